;; nqueens: count the solutions of the n-queens problem with the classic
;; list-based backtracking algorithm (Gabriel / r7rs-benchmarks "nqueens").
(define (iota1 n acc)
  (if (= n 0) acc (iota1 (- n 1) (cons n acc))))

(define (ok? row dist placed)
  (if (null? placed)
      #t
      (and (not (= (car placed) (+ row dist)))
           (not (= (car placed) (- row dist)))
           (ok? row (+ dist 1) (cdr placed)))))

(define (try-q x y z)
  (if (null? x)
      (if (null? y) 1 0)
      (+ (if (ok? (car x) 1 z)
             (try-q (append (cdr x) y) '() (cons (car x) z))
             0)
         (try-q (cdr x) (cons (car x) y) z))))

(define (queens n) (try-q (iota1 n '()) '() '()))

(display (queens 12))
(newline)
