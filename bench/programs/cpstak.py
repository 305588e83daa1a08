# cpstak: tak in continuation-passing style (closure creation and calls).
# CPython has no tail calls, so every CPS call nests: the recursion limit is
# raised and the work runs on a thread with a large stack.
import sys
import threading

def cpstak(x, y, z):
    def tak(x, y, z, k):
        if not y < x:
            return k(z)
        return tak(x - 1, y, z,
                   lambda v1: tak(y - 1, z, x,
                                  lambda v2: tak(z - 1, x, y,
                                                 lambda v3: tak(v1, v2, v3, k))))
    return tak(x, y, z, lambda a: a)

def main():
    acc = 0
    for _ in range(REPS):
        acc += cpstak(18, 12, 6)
    print(acc)

REPS = 10
sys.setrecursionlimit(10_000_000)
threading.stack_size(512 * 1024 * 1024)
t = threading.Thread(target=main)
t.start()
t.join()
