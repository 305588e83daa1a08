# deriv: symbolic differentiation (Gabriel "deriv"): builds many small lists,
# dispatches on symbols. Symbols are Python strings, lists are Python lists.
EXPR = ["+", ["*", 3, "x", "x"], ["*", "a", "x", "x"], ["*", "b", "x"], 5]

def deriv(a):
    if not isinstance(a, list):
        return 1 if a == "x" else 0
    op = a[0]
    if op == "+":
        return ["+"] + [deriv(b) for b in a[1:]]
    if op == "-":
        return ["-"] + [deriv(b) for b in a[1:]]
    if op == "*":
        return ["*", a, ["+"] + [["/", deriv(b), b] for b in a[1:]]]
    if op == "/":
        return ["-", ["/", deriv(a[1]), a[2]],
                ["/", a[1], ["*", a[2], a[2], deriv(a[2])]]]
    raise ValueError("no derivation for " + repr(op))

def size(t):
    if isinstance(t, list):
        n = 0
        for x in t:
            n += size(x)
        return n
    return 1

def main(n):
    acc = 0
    for _ in range(n):
        acc += size(deriv(EXPR))
    return acc

print(main(100000))
