;; wordcount: generate a deterministic text of N words ("w" + (i*7919 mod 5000)),
;; split it on spaces, count word frequencies in a hash table; print the
;; number of distinct words and the largest count.
(define (build i n acc)
  (if (= i n)
      acc
      (build (+ i 1) n
             (cons (string-append "w" (number->string (modulo (* i 7919) 5000))) acc))))

(define text (string-join (reverse (build 0 2000000 '())) " "))

(define counts (make-hash-table))

(define (count-words ws)
  (if (null? ws)
      #t
      (begin
        (hash-set! counts (car ws) (+ 1 (hash-ref counts (car ws) 0)))
        (count-words (cdr ws)))))

(count-words (string-split text #\space))

(define distinct (hash-count (lambda (k v) #t) counts))
(define most (hash-fold (lambda (k v best) (max v best)) 0 counts))

(display (string-append "(" (number->string distinct) " " (number->string most) ")"))
(newline)
