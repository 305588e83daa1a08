# nqueens: count the solutions of the n-queens problem with the classic
# list-based backtracking algorithm (Gabriel / r7rs-benchmarks "nqueens").
# Lists are Python lists; x[1:] + y plays the role of (append (rest x) y).

def ok(row, dist, placed):
    for q in placed:
        if q == row + dist or q == row - dist:
            return False
        dist += 1
    return True

def try_(x, y, z):
    if not x:
        return 1 if not y else 0
    head = x[0]
    found = try_(x[1:] + y, [], [head] + z) if ok(head, 1, z) else 0
    return found + try_(x[1:], [head] + y, z)

def queens(n):
    return try_(list(range(1, n + 1)), [], [])

print(queens(12))
