// The SX names of the signal API: signal deref reset! swap! computed effect
// batch untracked.
import { def, native } from './prims';
import { callFn, Lambda } from './eval';
import { Node, signal, computed, effect, batch, untracked, setCleanupRunner } from './signals';
import { typeError } from './data';

setCleanupRunner(c => { if (c instanceof Lambda || typeof c === 'function') callFn(c, []); });
const sig = (name: string, s: any): Node => {
  if (!(s instanceof Node) || s.isEffect) typeError(name, 'a signal', s);
  return s;
};
def('signal', 0, 1, (v = null) => signal(v));
def('signal?', 1, 1, s => s instanceof Node && !s.isEffect);
def('deref', 1, 1, s => sig('deref', s).get());
def('peek', 1, 1, s => untracked(() => sig('peek', s).get()));
def('reset!', 2, 2, (s, v) => { sig('reset!', s).set(v); return v; });
def('swap!', 2, Infinity, (s, f, ...args) => {
  const v = callFn(f, [untracked(() => sig('swap!', s).get()), ...args]);
  s.set(v);
  return v;
});
def('computed', 1, 1, f => computed(() => callFn(f, [])));
def('effect', 1, 1, f => { const d: any = native('dispose', 0, 0, effect(() => callFn(f, []))); d.sxDisposer = true; return d; });
def('batch', 1, 1, f => batch(() => callFn(f, [])));
def('untracked', 1, 1, f => untracked(() => callFn(f, [])));
