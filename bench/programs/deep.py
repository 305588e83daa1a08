# deep: non-tail recursion 1,000,000 frames deep, repeated.
# CPython needs its recursion limit raised; the work also runs on a thread
# with a large stack so it cannot overflow the C stack either.
import sys
import threading

def depth(n):
    if n == 0:
        return 0
    return 1 + depth(n - 1)

def main():
    acc = 0
    for _ in range(REPS):
        acc += depth(1_000_000)
    print(acc)

REPS = 5
sys.setrecursionlimit(10_000_000)
threading.stack_size(1024 * 1024 * 1024)
t = threading.Thread(target=main)
t.start()
t.join()
