;; fib: naive doubly-recursive Fibonacci (function calls + integer arithmetic).
(define (fib n)
  (if (< n 2)
      n
      (+ (fib (- n 1)) (fib (- n 2)))))

(display (fib 34))
(newline)
