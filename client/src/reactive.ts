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

// ---- DOM events, as island handlers see them (`:on-input (fn (e) ...)`)
const evt = (name: string, e: any): Event => {
  if (!e || typeof e.type !== 'string' || typeof e.preventDefault !== 'function') typeError(name, 'a DOM event', e);
  return e;
};
def('event-value', 1, 1, e => (evt('event-value', e).target as HTMLInputElement | null)?.value ?? null);
def('event-checked', 1, 1, e => !!(evt('event-checked', e).target as HTMLInputElement | null)?.checked);
def('event-key', 1, 1, e => (evt('event-key', e) as KeyboardEvent).key ?? null);
def('prevent-default!', 1, 1, e => { evt('prevent-default!', e).preventDefault(); return null; });
def('stop-propagation!', 1, 1, e => { evt('stop-propagation!', e).stopPropagation(); return null; });
