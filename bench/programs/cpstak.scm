;; cpstak: tak in continuation-passing style (closure creation and calls).
(define (tak-k x y z k)
  (if (not (< y x))
      (k z)
      (tak-k (- x 1) y z
             (lambda (v1)
               (tak-k (- y 1) z x
                      (lambda (v2)
                        (tak-k (- z 1) x y
                               (lambda (v3) (tak-k v1 v2 v3 k)))))))))

(define (cpstak x y z) (tak-k x y z (lambda (a) a)))

(define (reps k acc)
  (if (= k 0) acc (reps (- k 1) (+ acc (cpstak 18 12 6)))))

(display (reps 10 0))
(newline)
