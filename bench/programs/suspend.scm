;; suspend: 5,000,000 suspend/resume cycles. Each cycle the program aborts to
;; its host's prompt with a request (echo i); the host resumes the captured
;; delimited continuation with the answer (echo returns its argument), under a
;; fresh prompt. The program sums the answers.
(define tag (make-prompt-tag 'host))

(define (perform op arg) (abort-to-prompt tag op arg))

(define (host thunk)
  (call-with-prompt tag
    thunk
    (lambda (k op arg)
      (if (eq? op 'echo)
          (host (lambda () (k arg)))
          (error "unknown op" op)))))

(define (loop i n acc)
  (if (= i n) acc (loop (+ i 1) n (+ acc (perform 'echo i)))))

(display (host (lambda () (loop 0 5000000 0))))
(newline)
