# suspend: 5,000,000 suspend/resume cycles. The program is a generator; each
# cycle it yields a request ("echo", i) to its host, and the host resumes it
# with the answer (echo returns its argument). The program sums the answers.
N = 5_000_000

def program():
    acc = 0
    for i in range(N):
        acc += yield ("echo", i)
    return acc

def host(gen):
    try:
        request = gen.send(None)
        while True:
            op, arg = request
            if op != "echo":
                raise ValueError("unknown op " + op)
            request = gen.send(arg)
    except StopIteration as done:
        return done.value

print(host(program()))
