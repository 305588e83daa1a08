// Dicts, the canonical printer, equality and the error helpers.
import { Flt, Sym, Kw, List, El, RawHtml, SxRaise, kw, EMPTY } from './values';

// ------------------------------------------------------------------ errors

/** Raises a primitive-style error {:type :error :kind k :message m}. */
export function fail(kind: string, message: string): never {
  throw new SxRaise(Dict.of(kw('type'), kw('error'), kw('kind'), kw(kind), kw('message'), message));
}
export function typeError(fname: string, expected: string, got: any): never {
  fail('type', `${fname}: expected ${expected}, got ${typeName(got)} ${short(got)}`);
}
function short(v: any): string {
  let s: string;
  try { s = display(v); } catch { s = '?'; }
  return s.length > 40 ? s.slice(0, 40) + '…' : s;
}

export function typeName(v: any): string {
  if (v === null || v === undefined) return 'nil';
  switch (typeof v) {
    case 'boolean': return 'boolean';
    case 'number': case 'bigint': return 'integer';
    case 'string': return 'string';
    case 'function': return 'function';
  }
  if (v instanceof Flt) return 'float';
  if (v instanceof Sym) return 'symbol';
  if (v instanceof Kw) return 'keyword';
  if (v instanceof List) return 'list';
  if (v instanceof Dict) return 'dict';
  if (v instanceof El) return 'element';
  if (v.sxType) return v.sxType; // Lambda, Macro, Component, Signal
  return 'host'; // a browser object (a DOM event in a handler)
}

// ------------------------------------------------------------------ printer

export function numText(v: any): string {
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  const f = (v as Flt).v;
  if (!isFinite(f)) fail('value', 'serialize: NaN and infinities cannot be serialized');
  const s = String(f);
  return /[.e]/.test(s) ? s : s + '.0';
}

export function escapeString(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 34) out += '\\"';
    else if (c === 92) out += '\\\\';
    else if (c === 10) out += '\\n';
    else if (c === 9) out += '\\t';
    else if (c === 13) out += '\\r';
    else if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) out += '\\u{' + c.toString(16) + '}';
    else out += s[i];
  }
  return out + '"';
}

/** Canonical serialization (DESIGN §3). Opaque values raise :value unless `lenient`. */
export function serialize(v: any, lenient = false): string {
  const parts: string[] = [];
  write(v, parts, lenient);
  return parts.join('');
}

function write(v: any, out: string[], lenient: boolean): void {
  if (v === null || v === undefined) { out.push('nil'); return; }
  switch (typeof v) {
    case 'boolean': out.push(v ? 'true' : 'false'); return;
    case 'number': case 'bigint': out.push(String(v)); return;
    case 'string': out.push(escapeString(v)); return;
  }
  if (v instanceof Flt) {
    if (lenient && !isFinite(v.v)) { out.push(String(v.v)); return; }
    out.push(numText(v)); return;
  }
  if (v instanceof Sym) { out.push(v.name); return; }
  if (v instanceof Kw) { out.push(':' + v.name); return; }
  if (v instanceof List) {
    out.push('(');
    let first = true;
    for (let c = v; c.n > 0; c = c.t!) {
      if (!first) out.push(' ');
      first = false;
      write(c.h, out, lenient);
    }
    out.push(')');
    return;
  }
  if (v instanceof Dict) {
    out.push('{');
    let first = true;
    for (const [, k, val] of v.sorted()) {
      if (!first) out.push(' ');
      first = false;
      write(k, out, lenient);
      out.push(' ');
      write(val, out, lenient);
    }
    out.push('}');
    return;
  }
  if (v instanceof El) {
    out.push('(' + v.tag);
    for (const [name, val] of v.attrs) { out.push(' :' + name + ' '); write(val, out, lenient); }
    for (const c of v.children) { out.push(' '); write(c, out, lenient); }
    out.push(')');
    return;
  }
  if (v instanceof RawHtml) { out.push('(raw! '); write(v.html, out, lenient); out.push(')'); return; }
  const t = typeName(v);
  if (!lenient) fail('value', `serialize: a ${t} is not data`);
  out.push(`#<${t}${v.sxName ? ' ' + v.sxName : v.name && typeof v === 'function' ? ' ' + v.name : ''}>`);
}

/** The text `str` gives: strings as they are, nil as nothing, others canonical. */
export function display(v: any): string {
  if (typeof v === 'string') return v;
  if (v === null || v === undefined) return '';
  return serialize(v, true);
}

// ------------------------------------------------------------------ dicts

/** Compares strings by code point (= UTF-8 byte order). */
export function cmpCodepoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i), y = b.charCodeAt(i);
    if (x !== y) {
      if (x >= 0xd800 && x < 0xe000) x += 0x2800;
      if (y >= 0xd800 && y < 0xe000) y += 0x2800;
      return x - y;
    }
  }
  return a.length - b.length;
}

export function keyText(k: any): string {
  if (typeof k === 'string') return escapeString(k);
  if (k instanceof Kw) return ':' + k.name;
  if (typeof k === 'number' || typeof k === 'bigint' || (k instanceof Flt && isFinite(k.v))) return numText(k);
  return typeError('dict key', 'a keyword, string or finite number', k);
}

type Entry = [string, any, any];

/** An immutable dict; entries iterate in canonical key order. */
export class Dict {
  s: Entry[] | null = null;
  constructor(public m: Map<string, Entry> = new Map()) {}
  static of(...kvs: any[]): Dict {
    const d = new Dict();
    for (let i = 0; i + 1 < kvs.length; i += 2) { const t = keyText(kvs[i]); d.m.set(t, [t, kvs[i], kvs[i + 1]]); }
    return d;
  }
  get size() { return this.m.size; }
  get(k: any, dflt: any = null): any {
    const e = this.m.get(keyText(k));
    return e ? e[2] : dflt;
  }
  has(k: any): boolean { return this.m.has(keyText(k)); }
  assoc(...kvs: any[]): Dict {
    const m = new Map(this.m);
    for (let i = 0; i + 1 < kvs.length; i += 2) { const t = keyText(kvs[i]); m.set(t, [t, kvs[i], kvs[i + 1]]); }
    return new Dict(m);
  }
  dissoc(...ks: any[]): Dict {
    const m = new Map(this.m);
    for (const k of ks) m.delete(keyText(k));
    return new Dict(m);
  }
  sorted(): Entry[] {
    if (!this.s) this.s = [...this.m.values()].sort((a, b) => cmpCodepoints(a[0], b[0]));
    return this.s;
  }
  keys(): any[] { return this.sorted().map(e => e[1]); }
  vals(): any[] { return this.sorted().map(e => e[2]); }
  /** Plain JS object view with keyword/string names (for interop). */
  toObject(): Record<string, any> {
    const o: Record<string, any> = {};
    for (const [, k, v] of this.sorted()) o[k instanceof Kw ? k.name : String(k instanceof Flt ? k.v : k)] = v;
    return o;
  }
}
export const EMPTY_DICT = new Dict();

// ------------------------------------------------------------------ equality

export function equal(a: any, b: any): boolean {
  if (a === b) return true;
  if (a === null || b === null || a === undefined || b === undefined) return false;
  const ta = typeof a, tb = typeof b;
  if (ta === 'number' || ta === 'bigint' || a instanceof Flt) {
    const x = a instanceof Flt ? a.v : a, y = b instanceof Flt ? b.v : b;
    if (!(tb === 'number' || tb === 'bigint' || b instanceof Flt)) return false;
    // loose equality compares BigInt and Number exactly
    // eslint-disable-next-line eqeqeq
    return x == y;
  }
  // An element equals the list it serializes as (DESIGN §3: read-string
  // of serialize gives back an equal value), as in the Rust kernel.
  if (a instanceof El && b instanceof List) return elEqualsList(a, b);
  if (a instanceof List && b instanceof El) return elEqualsList(b, a);
  if (a instanceof List) {
    if (!(b instanceof List) || a.n !== b.n) return false;
    let x: List = a, y: List = b;
    while (x.n > 0) { if (!equal(x.h, y.h)) return false; x = x.t!; y = y.t!; }
    return true;
  }
  if (a instanceof Dict) {
    if (!(b instanceof Dict) || a.size !== b.size) return false;
    for (const [t, , v] of a.m.values()) {
      const e = b.m.get(t);
      if (!e || !equal(v, e[2])) return false;
    }
    return true;
  }
  if (a instanceof El) {
    if (!(b instanceof El) || a.tag !== b.tag || a.attrs.length !== b.attrs.length || a.children.length !== b.children.length) return false;
    for (let i = 0; i < a.attrs.length; i++) if (a.attrs[i][0] !== b.attrs[i][0] || !equal(a.attrs[i][1], b.attrs[i][1])) return false;
    for (let i = 0; i < a.children.length; i++) if (!equal(a.children[i], b.children[i])) return false;
    return true;
  }
  if (a instanceof RawHtml) return b instanceof RawHtml && a.html === b.html;
  return false;
}

/** Whether `l` is `(tag :attr value ... child ...)` for element `e`. */
function elEqualsList(e: El, l: List): boolean {
  if (l.n !== 1 + 2 * e.attrs.length + e.children.length) return false;
  let x: List = l;
  const next = () => { const h = x.h; x = x.t!; return h; };
  const head = next();
  if (!(head instanceof Sym) || head.name !== e.tag) return false;
  for (const [name, v] of e.attrs) {
    const k = next();
    if (!(k instanceof Kw) || k.name !== name || !equal(next(), v)) return false;
  }
  for (const c of e.children) if (!equal(next(), c)) return false;
  return true;
}

export { EMPTY };
