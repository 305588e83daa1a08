// Primitives with the semantics and argument order of docs/sx.md.
import { Flt, Sym, Kw, List, El, SxRaise, sym, kw, EMPTY, fromArray, toArray, cons, truthy } from './values';
import { Dict, fail, typeError, equal, display, serialize, typeName, cmpCodepoints, keyText } from './data';
import { readOne, normInt } from './reader';
import { sha3_256, hex, cidOf } from './sha3';
import { callFn, defineGlobal, Lambda, Macro, Component, setSpecialNatives, macroexpand1, splitAttrs, ELEMENTS } from './eval';

type Native = ((...a: any[]) => any) & { sxName?: string; min?: number; max?: number };

/** A native function value (not bound to a global). */
export function native(name: string, min: number, max: number, f: Native) {
  f.sxName = name;
  f.min = min;
  f.max = max;
  return f;
}
/** Defines a global native. */
export function def(name: string, min: number, max: number, f: Native) {
  defineGlobal(name, native(name, min, max, f));
  return f;
}
const INF = Infinity;

// ------------------------------------------------------------------ numbers

const isN = (v: any) => typeof v === 'number' || typeof v === 'bigint' || v instanceof Flt;
const isI = (v: any) => typeof v === 'number' || typeof v === 'bigint';
const fv = (v: any): number => (v instanceof Flt ? v.v : Number(v));
function num(name: string, v: any) { if (!isN(v)) typeError(name, 'a number', v); return v; }
function int(name: string, v: any) { if (!isI(v)) typeError(name, 'an integer', v); return v; }
function big(b: bigint, name: string): any {
  const r = normInt(b);
  if (r === null) fail('overflow', `${name}: integer overflow`);
  return r;
}
/** An integer from a finite float (floor/ceil/round/truncate results). */
function toInt(x: number, name: string): any {
  if (!isFinite(x)) fail('overflow', `${name}: ${x} is not an integer`);
  if (Number.isSafeInteger(x)) return x === 0 ? 0 : x;
  return big(BigInt(x), name);
}

function add(a: any, b: any): any {
  if (typeof a === 'number' && typeof b === 'number') { const r = a + b; return Number.isSafeInteger(r) ? r : big(BigInt(a) + BigInt(b), '+'); }
  num('+', a); num('+', b);
  if (a instanceof Flt || b instanceof Flt) return new Flt(fv(a) + fv(b));
  return big(BigInt(a) + BigInt(b), '+');
}
function sub(a: any, b: any): any {
  if (typeof a === 'number' && typeof b === 'number') { const r = a - b; return Number.isSafeInteger(r) ? r + 0 : big(BigInt(a) - BigInt(b), '-'); }
  num('-', a); num('-', b);
  if (a instanceof Flt || b instanceof Flt) return new Flt(fv(a) - fv(b));
  return big(BigInt(a) - BigInt(b), '-');
}
function mul(a: any, b: any): any {
  if (typeof a === 'number' && typeof b === 'number') { const r = a * b; return Number.isSafeInteger(r) ? r + 0 : big(BigInt(a) * BigInt(b), '*'); }
  num('*', a); num('*', b);
  if (a instanceof Flt || b instanceof Flt) return new Flt(fv(a) * fv(b));
  return big(BigInt(a) * BigInt(b), '*');
}
function div(a: any, b: any): any {
  num('/', a); num('/', b);
  if (fv(b) === 0) fail('divide-by-zero', '/: division by zero');
  if (a instanceof Flt || b instanceof Flt) return new Flt(fv(a) / fv(b));
  if (typeof a === 'number' && typeof b === 'number') return a % b === 0 ? a / b + 0 : new Flt(a / b);
  const x = BigInt(a), y = BigInt(b);
  return x % y === 0n ? big(x / y, '/') : new Flt(Number(a) / Number(b));
}
export function lt(a: any, b: any, name = '<'): number {
  if (isN(a) && isN(b)) {
    const x = a instanceof Flt ? a.v : a, y = b instanceof Flt ? b.v : b;
    if (Number.isNaN(x) || Number.isNaN(y)) fail('value', `${name}: cannot compare NaN`);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (typeof a === 'string' && typeof b === 'string') return Math.sign(cmpCodepoints(a, b));
  if ((a instanceof Kw && b instanceof Kw) || (a instanceof Sym && b instanceof Sym)) return Math.sign(cmpCodepoints(a.name, b.name));
  return fail('type', `${name}: cannot compare ${typeName(a)} with ${typeName(b)}`);
}
const cmpChain = (name: string, ok: (c: number) => boolean) => def(name, 1, INF, (...xs) => {
  for (let i = 0; i + 1 < xs.length; i++) if (!ok(lt(xs[i], xs[i + 1], name))) {
    for (let j = i + 1; j + 1 < xs.length; j++) lt(xs[j], xs[j + 1], name); // type-check the rest
    return false;
  }
  if (xs.length === 1) lt(xs[0], xs[0], name);
  return true;
});

def('+', 0, INF, (...xs) => { let r: any = 0; for (const x of xs) r = add(r, x); return r; });
def('-', 1, INF, (...xs) => { if (xs.length === 1) return sub(0, xs[0]); let r = xs[0]; for (let i = 1; i < xs.length; i++) r = sub(r, xs[i]); return r; });
def('*', 0, INF, (...xs) => { let r: any = 1; for (const x of xs) r = mul(r, x); return r; });
def('/', 1, INF, (...xs) => { if (xs.length === 1) return div(1, xs[0]); let r = xs[0]; for (let i = 1; i < xs.length; i++) r = div(r, xs[i]); return r; });
function quotRem(name: string, a: any, b: any, q: boolean): any {
  int(name, a); int(name, b);
  if (b == 0) fail('divide-by-zero', `${name}: division by zero`);
  if (typeof a === 'number' && typeof b === 'number') { const r = a % b; return q ? (a - r) / b + 0 : r + 0; }
  const x = BigInt(a), y = BigInt(b);
  return big(q ? x / y : x % y, name);
}
def('quot', 2, 2, (a, b) => quotRem('quot', a, b, true));
def('rem', 2, 2, (a, b) => quotRem('rem', a, b, false));
def('mod', 2, 2, (a, b) => {
  num('mod', a); num('mod', b);
  if (fv(b) === 0) fail('divide-by-zero', 'mod: division by zero');
  if (a instanceof Flt || b instanceof Flt) { const x = fv(a), y = fv(b); let r = x % y; if (r !== 0 && (r < 0) !== (y < 0)) r += y; return new Flt(r); }
  let r = quotRem('mod', a, b, false);
  if (r != 0 && (r < 0) !== (b < 0)) r = add(r, b);
  return r;
});
def('abs', 1, 1, a => (a instanceof Flt ? new Flt(Math.abs(a.v)) : lt(num('abs', a), 0) < 0 ? sub(0, a) : a));
def('min', 1, INF, (...xs) => xs.reduce((m, x) => { num('min', x); return lt(num('min', m), x, 'min') <= 0 ? m : x; }));
def('max', 1, INF, (...xs) => xs.reduce((m, x) => { num('max', x); return lt(num('max', m), x, 'max') >= 0 ? m : x; }));
def('inc', 1, 1, a => add(num('inc', a), 1));
def('dec', 1, 1, a => sub(num('dec', a), 1));
const rounding = (name: string, f: (x: number) => number) => def(name, 1, 1, a => (isI(a) ? a : toInt(f(fv(num(name, a))), name)));
rounding('floor', Math.floor);
rounding('ceil', Math.ceil);
rounding('round', x => Math.sign(x) * Math.round(Math.abs(x)));
rounding('truncate', Math.trunc);
def('int', 1, 1, a => {
  if (typeof a === 'string') {
    const t = a.trim();
    if (!/^[+-]?\d+$/.test(t)) fail('value', `int: not an integer: ${JSON.stringify(a)}`);
    return big(BigInt(t.replace(/^\+/, '')), 'int');
  }
  return isI(a) ? a : toInt(Math.trunc(fv(num('int', a))), 'int');
});
def('float', 1, 1, a => new Flt(fv(num('float', a))));
const fl = (name: string, f: (x: number) => number) => def(name, 1, 1, a => new Flt(f(fv(num(name, a)))));
def('sqrt', 1, 1, a => { const x = fv(num('sqrt', a)); if (x < 0) fail('value', 'sqrt: negative argument'); return new Flt(Math.sqrt(x)); });
fl('exp', Math.exp); fl('sin', Math.sin); fl('cos', Math.cos); fl('tan', Math.tan); fl('atan', Math.atan);
def('atan2', 2, 2, (y, x) => new Flt(Math.atan2(fv(num('atan2', y)), fv(num('atan2', x)))));
def('log', 1, 2, (x, base) => {
  const v = fv(num('log', x));
  if (v <= 0) fail('value', 'log: argument must be positive');
  if (base === undefined) return new Flt(Math.log(v));
  const b = fv(num('log', base));
  if (b <= 0 || b === 1) fail('value', 'log: bad base');
  return new Flt(Math.log(v) / Math.log(b));
});
def('pow', 2, 2, (x, y) => {
  num('pow', x); num('pow', y);
  if (isI(x) && isI(y) && y >= 0) {
    if (y > 64 && !(x == 0 || x == 1 || x == -1)) fail('overflow', 'pow: integer overflow');
    return big(BigInt(x) ** BigInt(y), 'pow');
  }
  return new Flt(Math.pow(fv(x), fv(y)));
});

// ------------------------------------------------------------------ comparison

def('=', 1, INF, (...xs) => { for (let i = 1; i < xs.length; i++) if (!equal(xs[i - 1], xs[i])) return false; return true; });
const neq = (...xs: any[]) => { for (let i = 1; i < xs.length; i++) if (!equal(xs[i - 1], xs[i])) return true; return false; };
def('!=', 1, INF, neq);
def('not=', 1, INF, neq);
cmpChain('<', c => c < 0);
cmpChain('>', c => c > 0);
cmpChain('<=', c => c <= 0);
cmpChain('>=', c => c >= 0);
def('compare', 2, 2, (a, b) => lt(a, b, 'compare'));
def('not', 1, 1, a => !truthy(a));

// ------------------------------------------------------------------ predicates

def('type-of', 1, 1, a => kw(typeName(a)));
const pred = (name: string, f: (a: any) => boolean) => def(name, 1, 1, a => f(a));
pred('nil?', a => a === null);
pred('boolean?', a => a === true || a === false);
pred('number?', isN);
pred('integer?', isI);
pred('float?', a => a instanceof Flt);
pred('string?', a => typeof a === 'string');
pred('symbol?', a => a instanceof Sym);
pred('keyword?', a => a instanceof Kw);
pred('list?', a => a instanceof List);
pred('dict?', a => a instanceof Dict);
pred('fn?', a => typeof a === 'function' || a instanceof Lambda || a instanceof Component);
pred('macro?', a => a instanceof Macro);
pred('component?', a => a instanceof Component);
pred('element?', a => a instanceof El);
def('empty?', 1, 1, a => {
  if (a === null) return true;
  if (a instanceof List) return a.n === 0;
  if (typeof a === 'string') return a.length === 0;
  if (a instanceof Dict) return a.size === 0;
  return typeError('empty?', 'a list, string, dict or nil', a);
});
pred('zero?', a => fv(num('zero?', a)) === 0);
pred('pos?', a => lt(num('pos?', a), 0) > 0);
pred('neg?', a => lt(num('neg?', a), 0) < 0);
pred('even?', a => BigInt(int('even?', a)) % 2n === 0n);
pred('odd?', a => BigInt(int('odd?', a)) % 2n !== 0n);

// ------------------------------------------------------------------ strings

const SURR = /[\ud800-\udfff]/;
function str(name: string, v: any): string { if (typeof v !== 'string') typeError(name, 'a string', v); return v; }
function cps(s: string): string[] { return Array.from(s); }
export function slen(s: string): number { return SURR.test(s) ? cps(s).length : s.length; }
function cpIndex(s: string, utf16: number): number { return utf16 < 0 ? -1 : SURR.test(s) ? cps(s.slice(0, utf16)).length : utf16; }
function nonNeg(name: string, n: any): number {
  int(name, n);
  if (n < 0) fail('value', `${name}: negative count ${n}`);
  return Number(n);
}
function lst(name: string, v: any): List {
  if (v === null) return EMPTY;
  if (!(v instanceof List)) typeError(name, 'a list', v);
  return v;
}

def('str', 0, INF, (...xs) => xs.map(display).join(''));
def('len', 1, 1, a => {
  if (typeof a === 'string') return slen(a);
  if (a instanceof List) return a.n;
  if (a instanceof Dict) return a.size;
  if (a === null) return 0;
  return typeError('len', 'a string, list or dict', a);
});
def('upper', 1, 1, s => str('upper', s).toUpperCase());
def('lower', 1, 1, s => str('lower', s).toLowerCase());
def('trim', 1, 1, s => str('trim', s).trim());
def('triml', 1, 1, s => str('triml', s).trimStart());
def('trimr', 1, 1, s => str('trimr', s).trimEnd());
def('split', 2, 2, (s, sep) => fromArray(str('split', sep) === '' ? cps(str('split', s)) : str('split', s).split(sep)));
def('join', 1, 2, (xs, sep = '') => { str('join', sep); return toArray(lst('join', xs)).map(display).join(sep); });
def('replace', 3, 3, (s, a, b) => { str('replace', s); if (str('replace', a) === '') fail('value', 'replace: empty pattern'); return s.split(a).join(str('replace', b)); });
def('starts-with?', 2, 2, (s, p) => str('starts-with?', s).startsWith(str('starts-with?', p)));
def('ends-with?', 2, 2, (s, p) => str('ends-with?', s).endsWith(str('ends-with?', p)));
def('contains?', 2, 2, (s, x) => {
  if (s === null) return false;
  if (s instanceof List) { for (const y of s) if (equal(y, x)) return true; return false; }
  return str('contains?', s).includes(str('contains?', x));
});
def('substring', 2, 3, (s, a, b) => {
  const c = cps(str('substring', s));
  int('substring', a);
  if (b === undefined || b === null) b = c.length;
  int('substring', b);
  if (a < 0 || b > c.length || a > b) fail('value', `substring: range ${a}..${b} outside 0..${c.length}`);
  return c.slice(Number(a), Number(b)).join('');
});
def('char-at', 2, 2, (s, i) => {
  const c = cps(str('char-at', s));
  int('char-at', i);
  if (i < 0 || i >= c.length) fail('value', `char-at: index ${i} out of range`);
  return c[Number(i)];
});
const indexOf = (name: string, last: boolean) => def(name, 2, 2, (s, x) => {
  if (s instanceof List || s === null) {
    const a = s ? toArray(s) : [];
    if (last) { for (let i = a.length - 1; i >= 0; i--) if (equal(a[i], x)) return i; }
    else for (let i = 0; i < a.length; i++) if (equal(a[i], x)) return i;
    return -1;
  }
  str(name, s); str(name, x);
  return cpIndex(s, last ? s.lastIndexOf(x) : s.indexOf(x));
});
indexOf('index-of', false);
indexOf('last-index-of', true);
def('chars', 1, 1, s => fromArray(cps(str('chars', s))));
def('string-repeat', 2, 2, (s, n) => str('string-repeat', s).repeat(nonNeg('string-repeat', n)));
const pad = (name: string, left: boolean) => def(name, 2, 3, (s, w, p = ' ') => {
  if (isN(s)) s = display(s);
  str(name, s); str(name, p);
  const width = nonNeg(name, w);
  if (slen(p) !== 1) fail('value', `${name}: pad must be one character`);
  const n = width - slen(s);
  if (n <= 0) return s;
  return left ? p.repeat(n) + s : s + p.repeat(n);
});
pad('pad-left', true);
pad('pad-right', false);
def('parse-int', 1, 2, (s, radix = 10) => {
  if (s === null) return null;
  if (isI(s)) return s;
  str('parse-int', s);
  int('parse-int', radix);
  if (radix < 2 || radix > 36) fail('value', 'parse-int: radix must be 2 to 36');
  const t = s.trim();
  const m = /^([+-]?)([0-9a-zA-Z]+)$/.exec(t);
  if (!m) return null;
  let v = 0n;
  for (const ch of m[2].toLowerCase()) {
    const d = parseInt(ch, 36);
    if (d >= radix) return null;
    v = v * BigInt(radix) + BigInt(d);
  }
  return normInt(m[1] === '-' ? -v : v);
});
def('parse-float', 1, 1, s => {
  if (s === null) return null;
  if (isN(s)) return new Flt(fv(s));
  const t = str('parse-float', s).trim();
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(t)) return null;
  const f = Number(t);
  return isFinite(f) ? new Flt(f) : null;
});
def('char-code', 1, 1, s => { if (str('char-code', s) === '') fail('value', 'char-code: empty string'); return s.codePointAt(0); });
def('code-char', 1, 1, n => {
  int('code-char', n);
  if (n < 0 || n > 0x10ffff || (n >= 0xd800 && n < 0xe000)) fail('value', `code-char: ${n} is not a Unicode scalar value`);
  return String.fromCodePoint(Number(n));
});
function checkName(name: string, s: string): string {
  let ok = s !== '';
  if (ok) { try { const v = readOne(s); ok = v instanceof Sym && v.name === s; } catch { ok = false; } }
  if (!ok) fail('value', `${name}: ${JSON.stringify(s)} would not read back as a ${name}`);
  return s;
}
def('symbol', 1, 1, x => {
  if (x instanceof Sym) return x;
  const s = x instanceof Kw ? x.name : str('symbol', x);
  return sym(checkName('symbol', s));
});
def('keyword', 1, 1, x => {
  if (x instanceof Kw) return x;
  let s = x instanceof Sym ? x.name : str('keyword', x);
  if (s.startsWith(':')) s = s.slice(1);
  checkName('keyword', s);
  return kw(s);
});
def('name', 1, 1, x => (x instanceof Kw || x instanceof Sym ? x.name : str('name', x)));

// ------------------------------------------------------------------ lists

def('list', 0, INF, (...xs) => fromArray(xs));
def('cons', 2, 2, (x, xs) => cons(x, lst('cons', xs)));
def('first', 1, 1, xs => { const l = lst('first', xs); return l.n ? l.h : null; });
def('rest', 1, 1, xs => { const l = lst('rest', xs); return l.n ? l.t : EMPTY; });
def('second', 1, 1, xs => { const l = lst('second', xs); return l.n > 1 ? l.t!.h : null; });
def('third', 1, 1, xs => { const l = lst('third', xs); return l.n > 2 ? l.t!.t!.h : null; });
def('last', 1, 1, xs => { let l = lst('last', xs); if (!l.n) return null; while (l.n > 1) l = l.t!; return l.h; });
def('nth', 2, 2, (xs, i) => {
  int('nth', i);
  if (typeof xs === 'string') { const c = cps(xs); if (i < 0 || i >= c.length) fail('value', `nth: index ${i} out of range`); return c[Number(i)]; }
  let l = lst('nth', xs);
  if (i < 0 || i >= l.n) fail('value', `nth: index ${i} out of range for a list of ${l.n}`);
  for (let k = 0; k < i; k++) l = l.t!;
  return l.h;
});
const append = (...xss: any[]) => {
  if (!xss.length) return EMPTY;
  let out = lst('append', xss[xss.length - 1]);
  for (let i = xss.length - 2; i >= 0; i--) out = fromArray(toArray(lst('append', xss[i])), 0, out);
  return out;
};
def('append', 0, INF, append);
def('concat', 0, INF, append);
def('reverse', 1, 1, xs => {
  if (typeof xs === 'string') return cps(xs).reverse().join('');
  let out = EMPTY;
  for (const x of lst('reverse', xs)) out = cons(x, out);
  return out;
});
def('take', 2, 2, (xs, n) => {
  const k = nonNeg('take', n);
  if (typeof xs === 'string') return cps(xs).slice(0, k).join('');
  return fromArray(toArray(lst('take', xs)).slice(0, k));
});
def('drop', 2, 2, (xs, n) => {
  const k = nonNeg('drop', n);
  if (typeof xs === 'string') return cps(xs).slice(k).join('');
  let l = lst('drop', xs);
  for (let i = 0; i < k && l.n; i++) l = l.t!;
  return l;
});
def('range', 1, 3, (a, b, step) => {
  let start: any = 0, end: any = a;
  if (b !== undefined) { start = a; end = b; }
  if (step === undefined) step = 1;
  num('range', start); num('range', end); num('range', step);
  const float = start instanceof Flt || end instanceof Flt || step instanceof Flt;
  const s = fv(start), e = fv(end), st = fv(step);
  if (st === 0) fail('value', 'range: zero step');
  if (!isFinite(s) || !isFinite(e) || !isFinite(st)) fail('value', 'range: non-finite argument');
  const count = Math.max(0, Math.ceil((e - s) / st));
  if (count > 100_000_000) fail('value', 'range: too many items');
  const out = new Array(count);
  for (let i = 0; i < count; i++) out[i] = float ? new Flt(s + i * st) : s + i * st;
  return fromArray(out);
});
def('flatten', 1, 1, xs => {
  const out: any[] = [];
  const walk = (l: List) => { for (const x of l) x instanceof List ? walk(x) : out.push(x); };
  walk(lst('flatten', xs));
  return fromArray(out);
});
def('distinct', 1, 1, xs => {
  const out: any[] = [];
  for (const x of lst('distinct', xs)) if (!out.some(y => equal(x, y))) out.push(x);
  return fromArray(out);
});
def('zip', 1, INF, (...xss) => {
  const as = xss.map(x => toArray(lst('zip', x)));
  const n = Math.min(...as.map(a => a.length));
  const out = [];
  for (let i = 0; i < n; i++) out.push(fromArray(as.map(a => a[i])));
  return fromArray(out);
});
function sortArr(name: string, a: any[], key: (x: any) => any): any[] {
  const keyed = a.map((x, i) => [key(x), i, x] as [any, number, any]);
  keyed.sort((p, q) => lt(p[0], q[0], name) || p[1] - q[1]);
  return keyed.map(k => k[2]);
}
def('sort', 1, 1, xs => {
  const a = toArray(lst('sort', xs));
  if (a.length === 1) lt(a[0], a[0], 'sort');
  return fromArray(sortArr('sort', a, x => x));
});

// ------------------------------------------------------------------ higher-order

const call = callFn;
function fnArg(name: string, f: any) {
  if (!(typeof f === 'function' || f instanceof Lambda || f instanceof Component || f instanceof Kw)) fail('type', `${name}: not a function: ${display(f)}`);
  return f;
}
def('map', 2, INF, (f, ...xss) => {
  fnArg('map', f);
  if (xss.length === 1) {
    const out: any[] = [];
    for (const x of lst('map', xss[0])) out.push(call(f, [x]));
    return fromArray(out);
  }
  const as = xss.map(x => toArray(lst('map', x)));
  const n = Math.min(...as.map(a => a.length));
  const out = [];
  for (let i = 0; i < n; i++) out.push(call(f, as.map(a => a[i])));
  return fromArray(out);
});
def('map-indexed', 2, 2, (f, xs) => { fnArg('map-indexed', f); let i = 0; const out: any[] = []; for (const x of lst('map-indexed', xs)) out.push(call(f, [i++, x])); return fromArray(out); });
def('mapcat', 2, 2, (f, xs) => {
  fnArg('mapcat', f);
  const out: any[] = [];
  for (const x of lst('mapcat', xs)) { const r = call(f, [x]); for (const y of lst('mapcat', r)) out.push(y); }
  return fromArray(out);
});
const filt = (name: string, keep: boolean) => def(name, 2, 2, (f, xs) => {
  fnArg(name, f);
  const out: any[] = [];
  for (const x of lst(name, xs)) if (truthy(call(f, [x])) === keep) out.push(x);
  return fromArray(out);
});
filt('filter', true);
filt('remove', false);
def('keep', 2, 2, (f, xs) => { fnArg('keep', f); const out: any[] = []; for (const x of lst('keep', xs)) { const r = call(f, [x]); if (r !== null) out.push(r); } return fromArray(out); });
def('reduce', 2, 3, (f, a, b) => {
  fnArg('reduce', f);
  let acc: any, l: List;
  if (b === undefined) {
    l = lst('reduce', a);
    if (!l.n) return call(f, []);
    acc = l.h; l = l.t!;
  } else { acc = a; l = lst('reduce', b); }
  for (const x of l) acc = call(f, [acc, x]);
  return acc;
});
def('for-each', 2, 2, (f, xs) => { fnArg('for-each', f); for (const x of lst('for-each', xs)) call(f, [x]); return null; });
def('some', 2, 2, (f, xs) => { fnArg('some', f); for (const x of lst('some', xs)) { const r = call(f, [x]); if (truthy(r)) return r; } return null; });
def('every?', 2, 2, (f, xs) => { fnArg('every?', f); for (const x of lst('every?', xs)) if (!truthy(call(f, [x]))) return false; return true; });
def('find', 2, 2, (f, xs) => { fnArg('find', f); for (const x of lst('find', xs)) if (truthy(call(f, [x]))) return x; return null; });
def('take-while', 2, 2, (f, xs) => { fnArg('take-while', f); const out: any[] = []; for (const x of lst('take-while', xs)) { if (!truthy(call(f, [x]))) break; out.push(x); } return fromArray(out); });
def('drop-while', 2, 2, (f, xs) => { fnArg('drop-while', f); let l = lst('drop-while', xs); while (l.n && truthy(call(f, [l.h]))) l = l.t!; return l; });
def('sort-by', 2, 2, (f, xs) => { fnArg('sort-by', f); return fromArray(sortArr('sort-by', toArray(lst('sort-by', xs)), x => call(f, [x]))); });
def('group-by', 2, 2, (f, xs) => {
  fnArg('group-by', f);
  const groups = new Map<string, [any, any[]]>();
  for (const x of lst('group-by', xs)) {
    const k = call(f, [x]);
    const t = keyText(k);
    const g = groups.get(t);
    if (g) g[1].push(x); else groups.set(t, [k, [x]]);
  }
  const m = new Map();
  for (const [t, [k, items]] of groups) m.set(t, [t, k, fromArray(items)]);
  return new Dict(m);
});
def('frequencies', 1, 1, xs => {
  let d = new Dict();
  for (const x of lst('frequencies', xs)) d = d.assoc(x, (d.get(x) ?? 0) + 1);
  return d;
});
def('count', 1, 2, (a, b) => {
  if (b === undefined) {
    if (typeof a === 'string') return slen(a);
    if (a instanceof Dict) return a.size;
    return lst('count', a).n;
  }
  fnArg('count', a);
  let n = 0;
  for (const x of lst('count', b)) if (truthy(call(a, [x]))) n++;
  return n;
});
def('iterate-n', 3, 3, (f, x, n) => { fnArg('iterate-n', f); const k = nonNeg('iterate-n', n); const out = []; for (let i = 0; i < k; i++) { out.push(x); if (i + 1 < k) x = call(f, [x]); } return fromArray(out); });
def('partial', 1, INF, (f, ...pre) => native('partial', 0, INF, (...xs) => call(f, [...pre, ...xs])));
def('comp', 0, INF, (...fs) => native('comp', 0, INF, (...xs) => {
  if (!fs.length) return xs[0] ?? null;
  let r = call(fs[fs.length - 1], xs);
  for (let i = fs.length - 2; i >= 0; i--) r = call(fs[i], [r]);
  return r;
}));
def('constantly', 1, 1, v => native('constantly', 0, INF, () => v));
def('complement', 1, 1, f => native('complement', 0, INF, (...xs) => !truthy(call(f, xs))));
def('identity', 1, 1, x => x);

// ------------------------------------------------------------------ dicts

function dct(name: string, d: any): Dict {
  if (d === null) return new Dict();
  if (!(d instanceof Dict)) typeError(name, 'a dict', d);
  return d;
}
def('dict', 0, INF, (...kvs) => { if (kvs.length % 2) fail('arity', 'dict: expected key/value pairs'); return Dict.of(...kvs); });
function getIn(name: string, d: any, k: any, dflt: any) {
  if (d === null) return dflt;
  if (d instanceof Dict) return d.get(k, dflt);
  if (d instanceof List) {
    // Any other key is simply absent, as in the kernel.
    if (!isI(k)) return dflt;
    if (k < 0 || k >= d.n) return dflt;
    let l = d;
    for (let i = 0; i < k; i++) l = l.t!;
    return l.h;
  }
  return typeError(name, 'a dict, list or nil', d);
}
def('get', 2, 3, (d, k, dflt = null) => getIn('get', d, k, dflt));
def('assoc', 3, INF, (d, ...kvs) => { if (kvs.length % 2) fail('arity', 'assoc: missing value'); return dct('assoc', d).assoc(...kvs); });
def('dissoc', 1, INF, (d, ...ks) => dct('dissoc', d).dissoc(...ks));
def('keys', 1, 1, d => fromArray(dct('keys', d).keys()));
def('vals', 1, 1, d => fromArray(dct('vals', d).vals()));
def('entries', 1, 1, d => fromArray(dct('entries', d).sorted().map(([, k, v]) => fromArray([k, v]))));
def('has-key?', 2, 2, (d, k) => dct('has-key?', d).has(k));
def('merge', 0, INF, (...ds) => {
  const m = new Map();
  for (const d of ds) if (d !== null) for (const [t, e] of dct('merge', d).m) m.set(t, e);
  return new Dict(m);
});
def('get-in', 2, 3, (d, path, dflt = null) => {
  let v = d;
  for (const k of lst('get-in', path)) {
    const MISSING = {};
    v = getIn('get-in', v, k, MISSING);
    if (v === MISSING) return dflt;
  }
  return v;
});
function assocIn(d: any, ks: any[], v: any): any {
  if (!ks.length) return v;
  const dd = dct('assoc-in', d);
  return dd.assoc(ks[0], assocIn(dd.get(ks[0]), ks.slice(1), v));
}
def('assoc-in', 3, 3, (d, path, v) => assocIn(d, toArray(lst('assoc-in', path)), v));
def('update', 3, INF, (d, k, f, ...args) => dct('update', d).assoc(k, call(f, [dct('update', d).get(k), ...args])));
def('update-in', 3, INF, (d, path, f, ...args) => {
  const ks = toArray(lst('update-in', path));
  let old: any = d;
  for (const k of ks) old = old === null ? null : getIn('update-in', old, k, null);
  return assocIn(d, ks, call(f, [old, ...args]));
});
def('select-keys', 2, 2, (d, ks) => { const dd = dct('select-keys', d); const out: any[] = []; for (const k of lst('select-keys', ks)) if (dd.has(k)) out.push(k, dd.get(k)); return Dict.of(...out); });
def('zipmap', 2, 2, (ks, vs) => { const a = toArray(lst('zipmap', ks)), b = toArray(lst('zipmap', vs)); const out: any[] = []; for (let i = 0; i < Math.min(a.length, b.length); i++) out.push(a[i], b[i]); return Dict.of(...out); });

// ------------------------------------------------------------------ data

def('serialize', 1, 1, v => serialize(v));
def('read-string', 1, 1, s => readOne(str('read-string', s)));
export function jsonEncode(v: any): string {
  if (v === null) return 'null';
  if (v === true || v === false) return String(v);
  if (isI(v)) return String(v);
  if (v instanceof Flt) { if (!isFinite(v.v)) fail('value', 'json-encode: NaN and infinities are not JSON'); return String(v.v); }
  if (typeof v === 'string') return JSON.stringify(v);
  if (v instanceof Kw || v instanceof Sym) return JSON.stringify(v.name);
  if (v instanceof List) return '[' + toArray(v).map(jsonEncode).join(',') + ']';
  if (v instanceof Dict) {
    // Two SX keys (`:a` and "a") can name one JSON key: an error, as in the kernel.
    const seen = new Set<string>();
    return '{' + v.sorted().map(([, k, x]) => {
      const name = k instanceof Kw ? k.name : typeof k === 'string' ? k : display(k);
      if (seen.has(name)) fail('value', `json-encode: two keys of the dict both become the JSON key ${JSON.stringify(name)}`);
      seen.add(name);
      return JSON.stringify(name) + ':' + jsonEncode(x);
    }).join(',') + '}';
  }
  return fail('value', `json-encode: a ${typeName(v)} is not JSON data`);
}
export function fromJson(j: any, text: string): any {
  if (j === null) return null;
  if (typeof j === 'boolean' || typeof j === 'string') return j;
  if (typeof j === 'number') return Number.isInteger(j) && Number.isSafeInteger(j) ? j : new Flt(j);
  if (Array.isArray(j)) return fromArray(j.map(x => fromJson(x, text)));
  return Dict.of(...Object.entries(j).flatMap(([k, v]) => [k, fromJson(v, text)]));
}
def('json-encode', 1, 1, jsonEncode);
def('json-decode', 1, 1, s => {
  let j: any;
  try { j = JSON.parse(str('json-decode', s)); } catch (e) { fail('value', `json-decode: ${(e as Error).message}`); }
  return fromJson(j, s);
});

// ------------------------------------------------------------------ errors and evaluation

def('raise', 1, 1, v => { throw new SxRaise(v); });
def('error', 1, INF, (...xs) => { fail('raise', xs.map(display).join(' ')); });
const applyF = def('apply', 1, INF, () => null); // rewritten by callFn
const evalF = def('eval', 1, 1, () => null);     // rewritten by callFn
setSpecialNatives(applyF, evalF);
def('macroexpand-1', 1, 1, f => { const e = macroexpand1(f); return e === undefined ? f : e; });
def('macroexpand', 1, 1, f => { for (let i = 0; i < 10000; i++) { const e = macroexpand1(f); if (e === undefined) return f; f = e; } return fail('syntax', 'macroexpand: too many steps'); });
let gensymN = 0;
def('gensym', 0, 1, (prefix = 'g') => sym(`${prefix instanceof Sym ? prefix.name : str('gensym', prefix)}__${++gensymN}`));
def('print', 0, INF, (...xs) => { console.log(xs.map(display).join(' ')); return null; });
def('println', 0, INF, (...xs) => { console.log(xs.map(display).join(' ')); return null; });

// ------------------------------------------------------------------ markup

def('element', 1, INF, (tag, ...items) => {
  str('element', tag);
  if (!/^[A-Za-z][A-Za-z0-9\-_.:]*$/.test(tag)) fail('value', `element: invalid tag name ${JSON.stringify(tag)}`);
  const na = splitAttrs(items);
  const attrs: [string, any][] = [];
  for (let i = 0; i < na; i += 2) attrs.push([(items[i] as Kw).name, items[i + 1]]);
  return new El(tag, attrs, items.slice(na));
});

export { ELEMENTS };

def('sha3-256', 1, 1, v => hex(sha3_256(new TextEncoder().encode(typeof v === 'string' ? v : serialize(v)))));
def('cid', 1, 1, v => cidOf(serialize(v)));
