;; tak: the Takeuchi function (deep, call-heavy integer recursion).
(define (tak x y z)
  (if (not (< y x))
      z
      (tak (tak (- x 1) y z)
           (tak (- y 1) z x)
           (tak (- z 1) x y))))

(display (tak 28 18 9))
(newline)
