;; deep: non-tail recursion 1,000,000 frames deep, repeated.
;; Guile's stack grows on demand, so no setup is needed.
(define (depth n)
  (if (= n 0) 0 (+ 1 (depth (- n 1)))))

(define (reps k acc)
  (if (= k 0) acc (reps (- k 1) (+ acc (depth 1000000)))))

(display (reps 5 0))
(newline)
