;; strbuild: build a string from 200,000 pieces (each the decimal form of i
;; followed by ","), by collecting the pieces and joining them; repeated.
(define (build i n acc)
  (if (= i n)
      acc
      (build (+ i 1) n (cons (string-append (number->string i) ",") acc))))

(define (one-round) (string-length (string-join (reverse (build 0 200000 '())) "")))

(define (rounds k acc)
  (if (= k 0) acc (rounds (- k 1) (+ acc (one-round)))))

(display (rounds 30 0))
(newline)
