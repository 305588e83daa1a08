// Signals: a push-pull reactive graph (after Preact signals and
// "reactively"). A write marks direct observers DIRTY and their observers
// CHECK; effects are queued and run after the outermost write or batch.
// Before a node recomputes, it first brings its sources up to date, so a
// computed never sees a mix of old and new values (glitch-free), and a
// computed whose value did not change does not re-run its observers.
// Computeds are lazy: they run when read, never just because a source changed.
import { equal } from './data';

const CLEAN = 0, CHECK = 1, DIRTY = 2;

/** What owns effects and computeds created while it runs: disposed together. */
export class Owner {
  disposers: (() => void)[] = [];
  disposed = false;
  add(d: () => void) { if (this.disposed) d(); else this.disposers.push(d); }
  dispose() {
    if (this.disposed) return;
    this.disposed = true;
    const ds = this.disposers.splice(0).reverse();
    for (const d of ds) { try { d(); } catch (e) { console.error(e); } }
  }
}

let observer: Node | null = null;   // the computation reading signals now
export let owner: Owner | null = null;
let batchDepth = 0;
const queue: Node[] = [];

export class Node {
  sxType = 'signal';
  value: any;
  observers: Node[] = [];
  sources: Node[] = [];
  state = CLEAN;
  fn: (() => any) | null = null;
  isEffect = false;
  cleanup: any = null;
  children: Owner | null = null;
  disposed = false;
  constructor(value?: any) { this.value = value; }

  /** Reads the value, tracking it as a source of the running computation. */
  get(): any {
    if (observer && !this.disposed && !observer.sources.includes(this)) observer.sources.push(this);
    if (this.fn) this.refresh();
    return this.value;
  }

  set(v: any) {
    if (this.fn) throw new Error('a computed cannot be set');
    if (equal(v, this.value) && typeof v === typeof this.value) return;
    this.value = v;
    batchDepth++;
    try { for (const o of this.observers) o.mark(DIRTY); } finally { batchDepth--; }
    if (!batchDepth) flush();
  }

  mark(state: number) {
    if (this.state >= state) return;
    if (this.state === CLEAN && this.isEffect) queue.push(this);
    this.state = state;
    for (const o of this.observers) o.mark(CHECK);
  }

  refresh() {
    if (this.disposed) return;
    if (this.state === CHECK) {
      for (const s of this.sources) {
        s.refresh();
        if ((this.state as number) === DIRTY) break;
      }
    }
    if (this.state === DIRTY) this.run();
    this.state = CLEAN;
  }

  run() {
    const fn = this.fn!;
    const old = this.value, oldSources = this.sources;
    if (this.isEffect) this.runCleanup();
    this.children?.dispose();
    this.children = new Owner();
    const prevObs = observer, prevOwner = owner;
    observer = this;
    owner = this.children;
    this.sources = [];
    try {
      this.value = fn();
    } finally {
      observer = prevObs;
      owner = prevOwner;
      for (const s of oldSources) if (!this.sources.includes(s)) remove(s.observers, this);
      for (const s of this.sources) if (!s.observers.includes(this)) s.observers.push(this);
      this.state = CLEAN;
    }
    if (this.isEffect) { this.cleanup = this.value; this.value = undefined; return; }
    if (!equal(old, this.value) || typeof old !== typeof this.value) for (const o of this.observers) o.state = DIRTY;
  }

  runCleanup() {
    const c = this.cleanup;
    this.cleanup = null;
    if (c !== null && c !== undefined) { if (cleanupRunner) cleanupRunner(c); else if (typeof c === 'function') c(); }
  }

  dispose() {
    if (this.disposed) return;
    this.disposed = true;
    if (this.isEffect) this.runCleanup();
    this.children?.dispose();
    for (const s of this.sources) remove(s.observers, this);
    this.sources = [];
  }
}

function remove(a: Node[], x: Node) {
  const i = a.indexOf(x);
  if (i >= 0) a.splice(i, 1);
}

/** Calls an effect's cleanup value (an SX function, set by the runtime). */
let cleanupRunner: ((f: any) => void) | null = null;
export function setCleanupRunner(f: (c: any) => void) { cleanupRunner = f; }

function flush() {
  while (queue.length) {
    const e = queue.shift()!;
    if (!e.disposed) e.refresh();
  }
}

export function signal(v: any): Node { return new Node(v); }

export function computed(fn: () => any): Node {
  const n = new Node(undefined);
  n.sxType = 'computed';
  n.fn = fn;
  n.state = DIRTY;
  owner?.add(() => n.dispose());
  return n;
}

/** Runs fn now and again whenever what it read changes; returns a disposer. */
export function effect(fn: () => any): () => void {
  const n = new Node(undefined);
  n.sxType = 'effect';
  n.fn = fn;
  n.isEffect = true;
  n.state = DIRTY;
  const dispose = () => n.dispose();
  owner?.add(dispose);
  n.refresh();
  return dispose;
}

export function batch<T>(fn: () => T): T {
  batchDepth++;
  try { return fn(); } finally { if (!--batchDepth) flush(); }
}

export function untracked<T>(fn: () => T): T {
  const prev = observer;
  observer = null;
  try { return fn(); } finally { observer = prev; }
}

/** Runs fn with `o` as the owner of the effects and computeds it creates. */
export function withOwner<T>(o: Owner | null, fn: () => T): T {
  const prev = owner;
  owner = o;
  try { return fn(); } finally { owner = prev; }
}

export const currentOwner = () => owner;
export const isSignal = (x: any): x is Node => x instanceof Node && !x.isEffect;

/** Runs fn, returning its value and the signals it read (for reactive markup). */
export function track<T>(fn: () => T): [T, Node[]] {
  const probe = { sources: [] as Node[], disposed: false } as unknown as Node;
  const prev = observer;
  observer = probe;
  try { return [fn(), probe.sources]; } finally { observer = prev; }
}

/**
 * An effect whose first run already happened (as `track`): it subscribes
 * to `sources` and runs `fn` on their next change.
 */
export function effectAfter(sources: Node[], fn: () => any, init?: () => void): () => void {
  const n = new Node(undefined);
  n.sxType = 'effect';
  n.fn = fn;
  n.isEffect = true;
  n.sources = sources.slice();
  n.children = new Owner();
  for (const s of sources) if (!s.observers.includes(n)) s.observers.push(n);
  // Owned before init runs: if init throws (a hydration mismatch), the
  // owner's disposal must still unsubscribe this node.
  const dispose = () => n.dispose();
  owner?.add(dispose);
  if (init) withOwner(n.children, init);
  return dispose;
}

/** While set, element children and attribute values that read signals become reactive. */
export let reactiveBuild = false;
export function withReactiveBuild<T>(on: boolean, fn: () => T): T {
  const prev = reactiveBuild;
  reactiveBuild = on;
  try { return fn(); } finally { reactiveBuild = prev; }
}

/** A reactive hole in markup: its value now, what it read, and how to recompute it. */
export class Reactive {
  constructor(public value: any, public sources: Node[], public fn: () => any) {}
}
