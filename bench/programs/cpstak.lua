-- cpstak: tak in continuation-passing style (closure creation and calls).
-- Lua has proper tail calls, so `return k(z)` does not grow the stack.
local function cpstak(x, y, z)
  local function tak(x, y, z, k)
    if not (y < x) then return k(z) end
    return tak(x - 1, y, z, function(v1)
      return tak(y - 1, z, x, function(v2)
        return tak(z - 1, x, y, function(v3)
          return tak(v1, v2, v3, k)
        end)
      end)
    end)
  end
  return tak(x, y, z, function(a) return a end)
end

local acc = 0
for _ = 1, 10 do acc = acc + cpstak(18, 12, 6) end
print(acc)
