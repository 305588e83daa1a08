// Signals through the SX API: glitch-free updates, laziness, cleanup, batch, untracked.
import test from 'node:test';
import assert from 'node:assert/strict';
import { sx } from './helpers.mjs';

const ev = src => sx.evalString(src);
const show = v => sx.serialize(v, true);

test('signal, deref, reset!, swap!', () => {
  assert.equal(show(ev('(let ((s (signal 1))) (reset! s 5) (swap! s + 2) (deref s))')), '7');
  assert.throws(() => ev('(deref 5)'));
});

test('computed is lazy and cached', () => {
  ev('(define t1/runs 0) (define t1/s (signal 1)) (define t1/c (computed (fn () (set! t1/runs (inc t1/runs)) (* 2 (deref t1/s)))))');
  assert.equal(ev('t1/runs'), 0, 'not run before it is read');
  assert.equal(ev('(deref t1/c)'), 2);
  assert.equal(ev('(deref t1/c)'), 2);
  assert.equal(ev('t1/runs'), 1, 'cached');
  ev('(reset! t1/s 5)');
  assert.equal(ev('t1/runs'), 1, 'a write does not run an unobserved computed');
  assert.equal(ev('(deref t1/c)'), 10);
  assert.equal(ev('t1/runs'), 2);
});

test('diamond dependencies are glitch-free: each effect run sees consistent values', () => {
  ev(`(define t2/a (signal 1))
      (define t2/b (computed (fn () (* 2 (deref t2/a)))))
      (define t2/c (computed (fn () (+ 1 (deref t2/a)))))
      (define t2/seen '())
      (effect (fn () (set! t2/seen (cons (list (deref t2/b) (deref t2/c)) t2/seen))))`);
  ev('(reset! t2/a 2)');
  ev('(reset! t2/a 3)');
  assert.equal(show(ev('(reverse t2/seen)')), '((2 2) (4 3) (6 4))');
});

test('a computed whose value does not change does not re-run its observers', () => {
  ev(`(define t3/a (signal 1)) (define t3/even (computed (fn () (even? (deref t3/a)))))
      (define t3/runs 0) (effect (fn () (deref t3/even) (set! t3/runs (inc t3/runs))))`);
  ev('(reset! t3/a 3)');
  ev('(reset! t3/a 5)');
  assert.equal(ev('t3/runs'), 1);
  ev('(reset! t3/a 6)');
  assert.equal(ev('t3/runs'), 2);
});

test('effect cleanup runs before each re-run and on dispose', () => {
  ev(`(define t4/s (signal 0)) (define t4/log '())
      (define t4/stop (effect (fn () (let ((v (deref t4/s))) (set! t4/log (cons (str "run " v) t4/log)) (fn () (set! t4/log (cons (str "clean " v) t4/log)))))))`);
  ev('(reset! t4/s 1)');
  ev('(t4/stop)');
  ev('(reset! t4/s 2)');
  assert.equal(show(ev('(reverse t4/log)')), '("run 0" "clean 0" "run 1" "clean 1")');
});

test('batch runs effects once after all writes', () => {
  ev(`(define t5/a (signal 1)) (define t5/b (signal 1)) (define t5/runs 0)
      (effect (fn () (deref t5/a) (deref t5/b) (set! t5/runs (inc t5/runs))))`);
  ev('(batch (fn () (reset! t5/a 2) (reset! t5/b 2)))');
  assert.equal(ev('t5/runs'), 2);
});

test('untracked reads do not subscribe', () => {
  ev(`(define t6/a (signal 1)) (define t6/b (signal 1)) (define t6/runs 0)
      (effect (fn () (deref t6/a) (untracked (fn () (deref t6/b))) (set! t6/runs (inc t6/runs))))`);
  ev('(reset! t6/b 2)');
  assert.equal(ev('t6/runs'), 1);
  ev('(reset! t6/a 2)');
  assert.equal(ev('t6/runs'), 2);
});

test('dynamic dependencies: a branch no longer taken is unsubscribed', () => {
  ev(`(define t7/flag (signal true)) (define t7/x (signal 1)) (define t7/runs 0)
      (effect (fn () (if (deref t7/flag) (deref t7/x) nil) (set! t7/runs (inc t7/runs))))`);
  ev('(reset! t7/flag false)');
  ev('(reset! t7/x 2)');
  assert.equal(ev('t7/runs'), 2);
});

test('effects created inside an effect are disposed when it re-runs', () => {
  ev(`(define t8/outer (signal 0)) (define t8/inner (signal 0)) (define t8/inner-runs 0)
      (effect (fn () (deref t8/outer) (effect (fn () (deref t8/inner) (set! t8/inner-runs (inc t8/inner-runs))))))`);
  ev('(reset! t8/outer 1)');
  ev('(reset! t8/outer 2)');
  assert.equal(ev('t8/inner-runs'), 3);
  ev('(reset! t8/inner 1)');
  assert.equal(ev('t8/inner-runs'), 4, 'only the live inner effect runs');
});
