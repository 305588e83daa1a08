-- suspend: 5,000,000 suspend/resume cycles. The program is a coroutine; each
-- cycle it yields a request ("echo", i) to its host, and the host resumes it
-- with the answer (echo returns its argument). The program sums the answers.
local N = 5000000

local function program()
  local acc = 0
  for i = 0, N - 1 do acc = acc + coroutine.yield("echo", i) end
  return "done", acc
end

local function host(co)
  local ok, op, arg = coroutine.resume(co)
  while true do
    if not ok then error(op) end
    if op == "done" then return arg end
    if op ~= "echo" then error("unknown op " .. tostring(op)) end
    ok, op, arg = coroutine.resume(co, arg)
  end
end

print(host(coroutine.create(program)))
