-- nqueens: count the solutions of the n-queens problem with the classic
-- list-based backtracking algorithm (Gabriel / r7rs-benchmarks "nqueens").
-- Lists are immutable cons cells {head, tail}, as in SX; nil is the empty list.
local function cons(h, t) return {h, t} end

local function append(a, b)
  if a == nil then return b end
  return cons(a[1], append(a[2], b))
end

local function iota1(n)
  local l = nil
  for i = n, 1, -1 do l = cons(i, l) end
  return l
end

local function ok(row, dist, placed)
  while placed ~= nil do
    local q = placed[1]
    if q == row + dist or q == row - dist then return false end
    dist = dist + 1
    placed = placed[2]
  end
  return true
end

local function try(x, y, z)
  if x == nil then
    if y == nil then return 1 else return 0 end
  end
  local head = x[1]
  local found = 0
  if ok(head, 1, z) then found = try(append(x[2], y), nil, cons(head, z)) end
  return found + try(x[2], cons(head, y), z)
end

local function queens(n) return try(iota1(n), nil, nil) end

print(queens(12))
