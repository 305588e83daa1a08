-- deriv: symbolic differentiation (Gabriel "deriv"): builds many small lists,
-- dispatches on symbols. Symbols are Lua strings, lists are array tables.
local EXPR = {"+", {"*", 3, "x", "x"}, {"*", "a", "x", "x"}, {"*", "b", "x"}, 5}

local deriv

local function map_rest(f, a)
  local out = {}
  for i = 2, #a do out[i - 1] = f(a[i]) end
  return out
end

local function with_head(h, xs)
  local out = {h}
  for i = 1, #xs do out[i + 1] = xs[i] end
  return out
end

deriv = function(a)
  if type(a) ~= "table" then
    if a == "x" then return 1 else return 0 end
  end
  local op = a[1]
  if op == "+" then
    return with_head("+", map_rest(deriv, a))
  elseif op == "-" then
    return with_head("-", map_rest(deriv, a))
  elseif op == "*" then
    return {"*", a, with_head("+", map_rest(function(b) return {"/", deriv(b), b} end, a))}
  elseif op == "/" then
    return {"-", {"/", deriv(a[2]), a[3]}, {"/", a[2], {"*", a[3], a[3], deriv(a[3])}}}
  end
  error("no derivation for " .. tostring(op))
end

local function size(t)
  if type(t) == "table" then
    local n = 0
    for i = 1, #t do n = n + size(t[i]) end
    return n
  end
  return 1
end

local acc = 0
for _ = 1, 100000 do acc = acc + size(deriv(EXPR)) end
print(acc)
