-- strbuild: build a string from 200,000 pieces (each the decimal form of i
-- followed by ","), by collecting the pieces and joining them; repeated.
local function build(n)
  local parts = {}
  for i = 0, n - 1 do parts[#parts + 1] = i .. "," end
  return table.concat(parts)
end

local total = 0
for _ = 1, 30 do total = total + #build(200000) end
print(total)
