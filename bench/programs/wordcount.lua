-- wordcount: generate a deterministic text of N words ("w" + (i*7919 mod 5000)),
-- split it on spaces, count word frequencies in a table; print the number of
-- distinct words and the largest count.
local N = 2000000
local parts = {}
for i = 0, N - 1 do parts[#parts + 1] = "w" .. (i * 7919 % 5000) end
local text = table.concat(parts, " ")

local counts = {}
for w in string.gmatch(text, "[^ ]+") do
  counts[w] = (counts[w] or 0) + 1
end

local distinct, most = 0, 0
for _, c in pairs(counts) do
  distinct = distinct + 1
  if c > most then most = c end
end
print("(" .. distinct .. " " .. most .. ")")
