;; deriv: symbolic differentiation (Gabriel "deriv"): builds many small lists,
;; dispatches on symbols.
(define expr '(+ (* 3 x x) (* a x x) (* b x) 5))

(define (deriv a)
  (cond ((not (pair? a)) (if (eq? a 'x) 1 0))
        ((eq? (car a) '+) (cons '+ (map deriv (cdr a))))
        ((eq? (car a) '-) (cons '- (map deriv (cdr a))))
        ((eq? (car a) '*)
         (list '* a (cons '+ (map (lambda (b) (list '/ (deriv b) b)) (cdr a)))))
        ((eq? (car a) '/)
         (list '-
               (list '/ (deriv (cadr a)) (caddr a))
               (list '/ (cadr a) (list '* (caddr a) (caddr a) (deriv (caddr a))))))
        (else (error "no derivation for" a))))

(define (size-list xs acc)
  (if (null? xs) acc (size-list (cdr xs) (+ acc (size (car xs))))))

(define (size t) (if (pair? t) (size-list t 0) 1))

(define (run i n acc)
  (if (= i n) acc (run (+ i 1) n (+ acc (size (deriv expr))))))

(display (run 0 100000 0))
(newline)
