// The island evaluator: SX forms are compiled to JS closures over a
// compile-time scope (variables resolve to frame slots or global cells),
// then run. Calls in tail position return a TailCall that the caller's
// trampoline (callFn) runs, so loops written as recursion run in constant
// JS stack. Non-tail recursion is bounded by the JS stack (see docs/client.md).
import { Sym, Kw, List, El, Flt, SxRaise, sym, EMPTY, fromArray, toArray, cons, truthy } from './values';
import { Dict, fail, equal, display, typeName } from './data';
import { readAll } from './reader';
import { reactiveBuild, track, Reactive, withReactiveBuild } from './signals';

export const ELEMENTS = new Set(('<> a abbr address area article aside audio b base bdi bdo blockquote body br button canvas caption cite code col colgroup data datalist dd del details dfn dialog div dl dt em embed fieldset figcaption figure footer form h1 h2 h3 h4 h5 h6 head header hgroup hr html i iframe img input ins kbd label legend li link main map mark menu meta meter nav noscript object ol optgroup option output p picture pre progress q rp rt ruby s samp script search section select slot small source span strong style sub summary sup table tbody td template textarea tfoot th thead time title tr track u ul var video wbr ' +
  'svg animate animateMotion animateTransform circle clipPath defs desc ellipse feBlend feColorMatrix feComponentTransfer feComposite feConvolveMatrix feDiffuseLighting feDisplacementMap feDistantLight feDropShadow feFlood feFuncA feFuncB feFuncG feFuncR feGaussianBlur feImage feMerge feMergeNode feMorphology feOffset fePointLight feSpecularLighting feSpotLight feTile feTurbulence filter foreignObject g image line linearGradient marker mask metadata mpath path pattern polygon polyline radialGradient rect set stop switch symbol text textPath tspan use view').split(' '));

// ------------------------------------------------------------------ runtime objects

export class Frame {
  constructor(public v: any[], public p: Frame | null) {}
}
type Code = (f: Frame) => any;

export class Cell {
  bound = false;
  v: any = null;
  constructor(public name: string) {}
}

export class Lambda {
  sxType = 'function';
  constructor(
    public sxName: string | null,
    public np: number,          // positional parameters
    public keys: string[],      // &key names (slots after positionals)
    public rest: boolean,       // &rest slot after the keys
    public size: number,        // frame size (params + internal defines)
    public body: Code,
    public env: Frame | null,
  ) {}
}
export class Macro {
  sxType = 'macro';
  constructor(public sxName: string, public fn: Lambda) {}
}
export class Component {
  sxType = 'component';
  constructor(public sxName: string, public fn: Lambda, public island: boolean, public params: any) {}
}
export class TailCall {
  constructor(public f: any, public args: any[]) {}
}

export const globals = new Map<string, Cell>();
export function cell(name: string): Cell {
  let c = globals.get(name);
  if (!c) globals.set(name, (c = new Cell(name)));
  return c;
}
export function defineGlobal(name: string, v: any) {
  const c = cell(name);
  c.v = v;
  c.bound = true;
}
export function lookupGlobal(name: string): any {
  const c = globals.get(name);
  if (!c || !c.bound) fail('unbound', `unbound symbol: ${name}`);
  return c.v;
}

// ------------------------------------------------------------------ calling

let islandWrapper: ((c: Component, args: any[], result: any) => any) | null = null;
/** Set by the renderer: how a call of a defisland component wraps its result. */
export function setIslandWrapper(w: typeof islandWrapper) { islandWrapper = w; }

export let applyNative: any = null;
export let evalNative: any = null;
export function setSpecialNatives(a: any, e: any) { applyNative = a; evalNative = e; }

function arity(name: string, want: string, got: number): never {
  fail('arity', `${name}: expected ${want} argument${want === '1' ? '' : 's'}, got ${got}`);
}

function bind(f: Lambda, args: any[]): Frame {
  const n = args.length, np = f.np;
  const v = new Array(f.size);
  if (f.keys.length === 0 && !f.rest) {
    if (n !== np) arity(f.sxName || 'fn', String(np), n);
    for (let i = 0; i < n; i++) v[i] = args[i];
    for (let i = n; i < f.size; i++) v[i] = null;
    return new Frame(v, f.env);
  }
  if (n < np) arity(f.sxName || 'fn', `at least ${np}`, n);
  for (let i = 0; i < np; i++) v[i] = args[i];
  for (let i = np; i < f.size; i++) v[i] = null;
  const rest: any[] = [];
  for (let i = np; i < n; i++) {
    const a = args[i];
    if (a instanceof Kw && f.keys.length) {
      const k = f.keys.indexOf(a.name);
      if (k >= 0) {
        if (i + 1 >= n) fail('arity', `${f.sxName || 'fn'}: keyword argument :${a.name} has no value`);
        v[np + k] = args[++i];
        continue;
      }
    }
    if (!f.rest) fail('arity', `${f.sxName || 'fn'}: unexpected argument ${display(a).slice(0, 40)} (keys accepted: ${f.keys.map(k => ':' + k).join(' ')})`);
    rest.push(a);
  }
  if (f.rest) v[np + f.keys.length] = fromArray(rest);
  return new Frame(v, f.env);
}

/** Calls any callable SX value with the arguments, running tail calls to the end. */
export function callFn(f: any, args: any[]): any {
  for (;;) {
    if (f instanceof Lambda) {
      const r = f.body(bind(f, args));
      if (r instanceof TailCall) { f = r.f; args = r.args; continue; }
      return r;
    }
    if (typeof f === 'function') {
      if (f === applyNative) {
        if (args.length < 2) arity('apply', 'at least 2', args.length);
        const last = args[args.length - 1];
        if (!(last instanceof List) && last !== null) fail('type', 'apply: the last argument must be a list');
        const fn = args[0];
        args = args.slice(1, -1).concat(last ? toArray(last) : []);
        f = fn;
        continue;
      }
      if (f === evalNative) {
        if (args.length !== 1) arity('eval', '1', args.length);
        const r = compile(args[0], null, true)(TOP);
        if (r instanceof TailCall) { f = r.f; args = r.args; continue; }
        return r;
      }
      const n = args.length;
      if (n < f.min || n > f.max) arity(f.sxName, f.max === f.min ? String(f.min) : f.max === Infinity ? `at least ${f.min}` : `${f.min} to ${f.max}`, n);
      return f(...args);
    }
    if (f instanceof Component) {
      if (f.island && islandWrapper) return islandWrapper(f, args, callFn(f.fn, args));
      f = f.fn;
      continue;
    }
    if (f instanceof Kw && (args.length === 1 || args.length === 2)) {
      const d = args[0];
      if (d === null) return args.length === 2 ? args[1] : null;
      if (!(d instanceof Dict)) fail('type', `:${f.name}: expected a dict, got ${typeName(d)}`);
      return d.get(f, args.length === 2 ? args[1] : null);
    }
    if (f instanceof Macro) fail('type', `macro ${f.sxName} used as a function value: macros are expanded at compile time`);
    fail('type', `not a function: ${typeName(f)} ${display(f).slice(0, 40)}`);
  }
}
export function force(r: any): any {
  return r instanceof TailCall ? callFn(r.f, r.args) : r;
}

// ------------------------------------------------------------------ compile-time scope

class Scope {
  constructor(public names: string[], public parent: Scope | null) {}
}

function resolve(scope: Scope | null, name: string): [number, number] | null {
  let d = 0;
  for (let s = scope; s; s = s.parent, d++) {
    const i = s.names.lastIndexOf(name);
    if (i >= 0) return [d, i];
  }
  return null;
}

function declare(scope: Scope, name: string): number {
  scope.names.push(name);
  return scope.names.length - 1;
}

function getter(d: number, i: number): Code {
  switch (d) {
    case 0: return f => f.v[i];
    case 1: return f => f.p!.v[i];
    case 2: return f => f.p!.p!.v[i];
    default: return f => { for (let k = 0; k < d; k++) f = f.p!; return f.v[i]; };
  }
}
function setter(d: number, i: number, val: Code): Code {
  if (d === 0) return f => { f.v[i] = val(f); return null; };
  return f => { const x = val(f); let g = f; for (let k = 0; k < d; k++) g = g.p!; g.v[i] = x; return null; };
}

export const TOP = new Frame([], null);

function syntax(msg: string): never { fail('syntax', msg); }

// ------------------------------------------------------------------ compiler

const S = (n: string) => sym(n);
const QUOTE = S('quote'), QQ = S('quasiquote'), UNQ = S('unquote'), UNQS = S('unquote-splicing');
const ELSE = S('else'), DEFINE = S('define'), AMP_REST = '&rest', AMP_KEY = '&key';

type Special = (form: any[], scope: Scope | null, tail: boolean) => Code;
const specials = new Map<string, Special>();

/** Expands a macro use at the head of `form` once, or returns undefined. */
export function macroexpand1(form: any, scope: Scope | null = null): any {
  if (!(form instanceof List) || form.n === 0 || !(form.h instanceof Sym)) return undefined;
  const name = form.h.name;
  if (specials.has(name) || resolve(scope, name)) return undefined;
  const c = globals.get(name);
  if (!c || !c.bound || !(c.v instanceof Macro)) return undefined;
  return callFn(c.v.fn, toArray(form.t!));
}

export function compile(x: any, scope: Scope | null, tail: boolean): Code {
  if (x instanceof Sym) return compileRef(x.name, scope);
  if (x instanceof List) {
    if (x.n === 0) return () => EMPTY;
    const head = x.h;
    if (head instanceof Sym) {
      const name = head.name;
      const sp = specials.get(name);
      if (sp && !resolve(scope, name)) return sp(toArray(x.t!), scope, tail);
      const exp = macroexpand1(x, scope);
      if (exp !== undefined) return compile(exp, scope, tail);
      if (!resolve(scope, name) && ELEMENTS.has(name)) return compileElement(name, toArray(x.t!), scope);
    }
    return compileCall(compile(head, scope, false), toArray(x.t!).map(a => compile(a, scope, false)), tail);
  }
  if (x instanceof Dict) {
    const entries = x.sorted().map(([t, k, v]) => [t, k, compile(v, scope, false)] as [string, any, Code]);
    return f => {
      const m = new Map();
      for (const [t, k, c] of entries) m.set(t, [t, k, c(f)]);
      return new Dict(m);
    };
  }
  return () => x;
}

function compileRef(name: string, scope: Scope | null): Code {
  const r = resolve(scope, name);
  if (r) return getter(r[0], r[1]);
  const c = cell(name);
  return () => {
    if (!c.bound) fail('unbound', `unbound symbol: ${name}`);
    return c.v;
  };
}

function compileCall(fc: Code, argc: Code[], tail: boolean): Code {
  const n = argc.length;
  if (tail) {
    if (n === 0) return f => new TailCall(fc(f), []);
    if (n === 1) { const a = argc[0]; return f => new TailCall(fc(f), [a(f)]); }
    if (n === 2) { const a = argc[0], b = argc[1]; return f => new TailCall(fc(f), [a(f), b(f)]); }
    return f => { const fn = fc(f); const args = new Array(n); for (let i = 0; i < n; i++) args[i] = argc[i](f); return new TailCall(fn, args); };
  }
  if (n === 0) return f => callFn(fc(f), []);
  if (n === 1) { const a = argc[0]; return f => callFn(fc(f), [a(f)]); }
  if (n === 2) { const a = argc[0], b = argc[1]; return f => { const fn = fc(f); return callFn(fn, [a(f), b(f)]); }; }
  return f => { const fn = fc(f); const args = new Array(n); for (let i = 0; i < n; i++) args[i] = argc[i](f); return callFn(fn, args); };
}

/** Splits leading keyword/value pairs (attributes) from children. */
export function splitAttrs(items: any[]): number {
  let i = 0;
  while (i + 1 < items.length && items[i] instanceof Kw) i += 2;
  return i;
}

function compileElement(tag: string, items: any[], scope: Scope | null): Code {
  const na = splitAttrs(items);
  const attrs: [string, Code][] = [];
  for (let i = 0; i < na; i += 2) attrs.push([(items[i] as Kw).name, compile(items[i + 1], scope, false)]);
  const kids = items.slice(na).map(c => compile(c, scope, false));
  // which expressions may read a signal (literals and fn forms cannot)
  const dyn = (x: any) => (x instanceof Sym || x instanceof List || x instanceof Dict) && !(x instanceof List && x.h instanceof Sym && (x.h.name === 'fn' || x.h.name === 'lambda' || x.h.name === 'quote'));
  const attrDyn = attrs.map((_, i) => dyn(items[2 * i + 1]));
  const kidDyn = items.slice(na).map(dyn);
  const gc = cell(tag);
  return f => {
    if (gc.bound) {
      // a global binding of an element name is a call
      return callFn(gc.v, [...items.slice(0, na).flatMap((k, i) => i % 2 ? [] : [k, attrs[i / 2][1](f)]), ...kids.map(k => k(f))]);
    }
    if (reactiveBuild) return new El(tag, attrs.map(([n, c], i) => [n, attrDyn[i] ? hole(c, f) : c(f)] as [string, any]), kids.map((k, i) => (kidDyn[i] ? hole(k, f) : k(f))));
    return new El(tag, attrs.map(([n, c]) => [n, c(f)] as [string, any]), kids.map(k => k(f)));
  };
}

/**
 * Inside an island render, a child or attribute expression that reads a
 * signal becomes a Reactive hole that the renderer re-evaluates (with the
 * same variables) when those signals change.
 */
function hole(c: Code, f: Frame): any {
  const [v, sources] = track(() => c(f));
  return sources.length ? new Reactive(v, sources, () => withReactiveBuild(true, () => c(f))) : v;
}

/** Compiles a body: internal defines are declared first (letrec* semantics). */
function compileBody(forms: any[], scope: Scope | null, tail: boolean): Code {
  if (scope) {
    for (let i = 0; i < forms.length; i++) {
      let x = forms[i];
      // expand macros at the head so a macro that expands to define declares it
      for (let e = macroexpand1(x, scope); e !== undefined; e = macroexpand1(x, scope)) x = forms[i] = e;
      if (x instanceof List && x.h === DEFINE && x.n >= 2) {
        const target = x.t!.h;
        const name = target instanceof List ? target.h?.name : target?.name;
        if (name && !scope.names.includes(name)) declare(scope, name);
      }
    }
  }
  return seq(forms.map((x, i) => compile(x, scope, tail && i === forms.length - 1)));
}

function seq(cs: Code[]): Code {
  if (cs.length === 0) return () => null;
  if (cs.length === 1) return cs[0];
  if (cs.length === 2) { const [a, b] = cs; return f => { a(f); return b(f); }; }
  const n = cs.length - 1;
  return f => { for (let i = 0; i < n; i++) cs[i](f); return cs[n](f); };
}

interface Params { pos: string[]; keys: string[]; rest: string | null }
function parseParams(p: any, what: string): Params {
  if (p === null) p = EMPTY;
  if (!(p instanceof List)) syntax(`${what}: the parameter list must be a list`);
  const out: Params = { pos: [], keys: [], rest: null };
  let mode = 0;
  for (const x of p) {
    if (!(x instanceof Sym)) syntax(`${what}: parameters must be symbols, got ${display(x)}`);
    if (x.name === AMP_REST) { mode = 2; continue; }
    if (x.name === AMP_KEY) { mode = 1; continue; }
    if (mode === 0) out.pos.push(x.name);
    else if (mode === 1) out.keys.push(x.name);
    else { if (out.rest) syntax(`${what}: only one &rest parameter`); out.rest = x.name; }
  }
  return out;
}

/** Compiles (fn params body...) into a Code that makes a Lambda. */
function compileLambda(name: string | null, params: any, body: any[], scope: Scope | null): Code {
  const ps = parseParams(params, name || 'fn');
  const inner = new Scope([...ps.pos, ...ps.keys, ...(ps.rest ? [ps.rest] : [])], scope);
  const code = compileBody(body, inner, true);
  const np = ps.pos.length, keys = ps.keys, rest = !!ps.rest;
  return f => new Lambda(name, np, keys, rest, inner.names.length, code, f);
}

function compileQuasi(x: any, depth: number, scope: Scope | null): Code {
  if (!(x instanceof List) || x.n === 0) {
    if (x instanceof Dict) {
      const es = x.sorted().map(([t, k, v]) => [t, k, compileQuasi(v, depth, scope)] as [string, any, Code]);
      return f => { const m = new Map(); for (const [t, k, c] of es) m.set(t, [t, k, c(f)]); return new Dict(m); };
    }
    return () => x;
  }
  if (x.h === UNQ && x.n === 2) {
    if (depth === 1) return compile(x.t!.h, scope, false);
    const inner = compileQuasi(x.t!.h, depth - 1, scope);
    return f => fromArray([UNQ, inner(f)]);
  }
  if (x.h === QQ && x.n === 2) {
    const inner = compileQuasi(x.t!.h, depth + 1, scope);
    return f => fromArray([QQ, inner(f)]);
  }
  const parts: [boolean, Code][] = [];
  for (const item of x) {
    if (item instanceof List && item.h === UNQS && item.n === 2) {
      if (depth === 1) { parts.push([true, compile(item.t!.h, scope, false)]); continue; }
      const inner = compileQuasi(item.t!.h, depth - 1, scope);
      parts.push([false, f => fromArray([UNQS, inner(f)])]);
      continue;
    }
    parts.push([false, compileQuasi(item, depth, scope)]);
  }
  return f => {
    const out: any[] = [];
    for (const [splice, c] of parts) {
      const v = c(f);
      if (!splice) out.push(v);
      else if (v instanceof List) { for (const y of v) out.push(y); }
      else if (v !== null) fail('type', 'unquote-splicing: expected a list, got ' + typeName(v));
    }
    return fromArray(out);
  };
}

// ---- the special forms

specials.set('quote', a => { if (a.length !== 1) syntax('quote takes one form'); const v = a[0]; return () => v; });
specials.set('quasiquote', (a, s) => { if (a.length !== 1) syntax('quasiquote takes one form'); return compileQuasi(a[0], 1, s); });
specials.set('if', (a, s, t) => {
  if (a.length < 2 || a.length > 3) syntax(`if takes a test, a then form and an optional else form, got ${a.length} forms`);
  const c = compile(a[0], s, false), y = compile(a[1], s, t), n = a.length === 3 ? compile(a[2], s, t) : null;
  return n ? f => (truthy(c(f)) ? y(f) : n(f)) : f => (truthy(c(f)) ? y(f) : null);
});
specials.set('when', (a, s, t) => { const c = compile(a[0], s, false), b = seq(a.slice(1).map((x, i) => compile(x, s, t && i === a.length - 2))); return f => (truthy(c(f)) ? b(f) : null); });
specials.set('unless', (a, s, t) => { const c = compile(a[0], s, false), b = seq(a.slice(1).map((x, i) => compile(x, s, t && i === a.length - 2))); return f => (truthy(c(f)) ? null : b(f)); });
const begin: Special = (a, s, t) => seq(a.map((x, i) => compile(x, s, t && i === a.length - 1)));
specials.set('begin', begin);
specials.set('do', begin);
specials.set('and', (a, s, t) => {
  if (a.length === 0) return () => true;
  const cs = a.map((x, i) => compile(x, s, t && i === a.length - 1));
  const n = cs.length - 1;
  return f => { for (let i = 0; i < n; i++) { const v = cs[i](f); if (!truthy(v)) return v; } return cs[n](f); };
});
specials.set('or', (a, s, t) => {
  if (a.length === 0) return () => null;
  const cs = a.map((x, i) => compile(x, s, t && i === a.length - 1));
  const n = cs.length - 1;
  return f => { for (let i = 0; i < n; i++) { const v = cs[i](f); if (truthy(v)) return v; } return cs[n](f); };
});
specials.set('cond', (a, s, t) => {
  const scheme = a.length > 0 && a.every(c => c instanceof List && c.n > 0);
  const clauses: [Code | null, Code | null][] = [];
  if (scheme) {
    for (const c of a as List[]) {
      const items = toArray(c);
      const isElse = items[0] === ELSE || (items[0] instanceof Kw && items[0].name === 'else');
      clauses.push([isElse ? null : compile(items[0], s, false), items.length > 1 ? seq(items.slice(1).map((x, i) => compile(x, s, t && i === items.length - 2))) : null]);
    }
  } else {
    if (a.length % 2) syntax('cond: flat style needs test/expression pairs');
    for (let i = 0; i < a.length; i += 2) {
      const isElse = a[i] === ELSE || (a[i] instanceof Kw && a[i].name === 'else');
      clauses.push([isElse ? null : compile(a[i], s, false), compile(a[i + 1], s, t)]);
    }
  }
  return f => {
    for (const [test, body] of clauses) {
      if (!test) return body ? body(f) : null;
      const v = test(f);
      if (truthy(v)) return body ? body(f) : v;
    }
    return null;
  };
});
specials.set('case', (a, s, t) => {
  const key = compile(a[0], s, false);
  const rest = a.slice(1);
  const scheme = rest.length > 0 && rest.every(c => c instanceof List && c.n > 0);
  const clauses: [any[] | null, Code][] = [];
  const isElse = (d: any) => d === ELSE || (d instanceof Kw && d.name === 'else');
  if (scheme) {
    for (const c of rest as List[]) {
      const items = toArray(c);
      const d = items[0];
      clauses.push([isElse(d) ? null : d instanceof List ? toArray(d) : [d], seq(items.slice(1).map((x, i) => compile(x, s, t && i === items.length - 2)))]);
    }
  } else {
    if (rest.length % 2) syntax('case: flat style needs datum/expression pairs');
    for (let i = 0; i < rest.length; i += 2) clauses.push([isElse(rest[i]) ? null : [rest[i]], compile(rest[i + 1], s, t)]);
  }
  return f => {
    const k = key(f);
    for (const [ds, body] of clauses) if (!ds || ds.some(d => equal(d, k))) return body(f);
    return null;
  };
});

function bindingPairs(b: any, what: string): [string, any][] {
  if (b === null) return [];
  if (!(b instanceof List)) syntax(`${what}: bindings must be a list`);
  const items = toArray(b);
  if (items.every(x => x instanceof List)) {
    return items.map((x: List) => {
      if (!(x.h instanceof Sym) || x.n > 2) syntax(`${what}: a binding is (name value)`);
      return [x.h.name, x.n === 2 ? x.t!.h : null];
    });
  }
  if (items.length % 2) syntax(`${what}: flat bindings need name/value pairs`);
  const out: [string, any][] = [];
  for (let i = 0; i < items.length; i += 2) {
    if (!(items[i] instanceof Sym)) syntax(`${what}: binding names must be symbols`);
    out.push([items[i].name, items[i + 1]]);
  }
  return out;
}

const letForm: Special = (a, s, t) => {
  if (a[0] instanceof Sym) {
    // named let: a local loop function
    const name = a[0].name;
    const pairs = bindingPairs(a[1], 'let');
    const inits = pairs.map(([, v]) => compile(v, s, false));
    const loopScope = new Scope([name], s);
    const mk = compileLambda(name, fromArray(pairs.map(([n]) => sym(n))), a.slice(2), loopScope);
    return f => {
      const fr = new Frame([null], f);
      const lam = mk(fr);
      fr.v[0] = lam;
      const args = inits.map(c => c(f));
      return t ? new TailCall(lam, args) : callFn(lam, args);
    };
  }
  const pairs = bindingPairs(a[0], 'let');
  const inner = new Scope([], s);
  const steps: [number, Code][] = [];
  for (const [n, v] of pairs) {
    const c = compile(v, inner, false);
    steps.push([declare(inner, n), c]);
  }
  const body = compileBody(a.slice(1), inner, t);
  return f => {
    const fr = new Frame(new Array(inner.names.length).fill(null), f);
    for (const [i, c] of steps) fr.v[i] = c(fr);
    return body(fr);
  };
};
specials.set('let', letForm);
specials.set('let*', letForm);
specials.set('letrec', (a, s, t) => {
  const pairs = bindingPairs(a[0], 'letrec');
  const inner = new Scope(pairs.map(([n]) => n), s);
  const inits = pairs.map(([, v]) => compile(v, inner, false));
  const body = compileBody(a.slice(1), inner, t);
  return f => {
    const fr = new Frame(new Array(inner.names.length).fill(null), f);
    for (let i = 0; i < inits.length; i++) fr.v[i] = inits[i](fr);
    return body(fr);
  };
});
specials.set('define', (a, s) => {
  let name: string, val: Code;
  if (a[0] instanceof List) {
    const head = a[0].h;
    if (!(head instanceof Sym)) syntax('define: the function name must be a symbol');
    name = head.name;
    if (s && !s.names.includes(name)) declare(s, name);
    val = compileLambda(name, a[0].t, a.slice(1), s);
  } else {
    if (!(a[0] instanceof Sym)) syntax('define: the name must be a symbol');
    name = a[0].name;
    if (s && !s.names.includes(name)) declare(s, name);
    val = a.length > 1 ? compile(a[1], s, false) : () => null;
    // give a defined lambda its name
    const inner = val;
    val = f => { const v = inner(f); if (v instanceof Lambda && !v.sxName) v.sxName = name; return v; };
  }
  if (s) {
    const r = resolve(s, name)!;
    return setter(r[0], r[1], val);
  }
  const c = cell(name);
  return f => { c.v = val(f); c.bound = true; return null; };
});
specials.set('set!', (a, s) => {
  if (a.length !== 2 || !(a[0] instanceof Sym)) syntax('set! takes a name and a value');
  const name = a[0].name, val = compile(a[1], s, false);
  const r = resolve(s, name);
  if (r) return setter(r[0], r[1], val);
  const c = cell(name);
  return f => {
    const v = val(f);
    if (!c.bound) fail('unbound', `set!: unbound symbol: ${name}`);
    c.v = v;
    return null;
  };
});
const fnForm: Special = (a, s) => compileLambda(null, a[0], a.slice(1), s);
specials.set('fn', fnForm);
specials.set('lambda', fnForm);
specials.set('defmacro', (a, s) => {
  const name = (a[0] as Sym).name;
  const mk = compileLambda(name, a[1], a.slice(2), s);
  return f => { defineGlobal(name, new Macro(name, mk(f))); return null; };
});
const defcomp = (island: boolean): Special => (a, s) => {
  if (!(a[0] instanceof Sym)) syntax('defcomp: the name must be a symbol');
  const name = a[0].name;
  const mk = compileLambda(name, a[1], a.slice(2), s);
  const params = a[1];
  return f => { defineGlobal(name, new Component(name, mk(f), island, params)); return null; };
};
specials.set('defcomp', defcomp(false));
specials.set('defisland', defcomp(true));
specials.set('try', (a, s) => {
  let catchName: string | null = null, handler: Code | null = null, fin: Code | null = null;
  const body: any[] = [];
  let hscope: Scope | null = null;
  for (const x of a) {
    if (x instanceof List && x.h instanceof Sym && x.h.name === 'catch') {
      const items = toArray(x);
      if (!(items[1] instanceof Sym)) syntax('catch takes a name');
      catchName = items[1].name;
      hscope = new Scope([catchName], s);
      handler = compileBody(items.slice(2), hscope, false);
    } else if (x instanceof List && x.h instanceof Sym && x.h.name === 'finally') {
      fin = seq(toArray(x.t!).map(y => compile(y, s, false)));
    } else body.push(x);
  }
  const b = seq(body.map(x => compile(x, s, false)));
  return f => {
    try {
      return force(b(f));
    } catch (e) {
      if (!(e instanceof SxRaise) || !handler) throw e;
      const fr = new Frame(new Array(hscope!.names.length).fill(null), f);
      fr.v[0] = e.value;
      return force(handler(fr));
    } finally {
      if (fin) fin(f);
    }
  };
});
specials.set('perform', () => () => fail('perform', 'perform: the browser runtime has no host for IO requests'));

// ------------------------------------------------------------------ entry points

/** Evaluates one form at top level. */
export function evalForm(x: any): any {
  return force(compile(x, null, true)(TOP));
}

/** Reads and evaluates every form of `src` in order; returns the last value. */
export function evalString(src: string): any {
  let last: any = null;
  for (const x of readAll(src)) last = evalForm(x);
  return last;
}

/** Runs a JS thunk, converting an engine stack overflow into an error that SX cannot catch. */
export function guardStack<T>(thunk: () => T): T {
  try {
    return thunk();
  } catch (e) {
    if (e instanceof RangeError) throw new Error('SX: recursion too deep for the JS stack (budget)');
    throw e;
  }
}

export { cons, Flt };
