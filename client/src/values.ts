// SX values in JavaScript.
//
// nil → null; booleans → true/false; integers → a JS number when it is a
// safe integer, a BigInt otherwise (always within i64); floats → Flt (boxed,
// so 1 and 1.0 stay different types); strings → JS strings; symbols and
// keywords → interned Sym/Kw; lists → immutable cons cells (List, with the
// length cached so len is O(1)); dicts → Dict (entries ordered by the
// canonical text of their keys); elements → El.

export class Flt {
  constructor(public v: number) {}
}

export class Sym {
  constructor(public name: string) {}
  toString() { return this.name; }
}
export class Kw {
  constructor(public name: string) {}
  toString() { return ':' + this.name; }
}

const syms = new Map<string, Sym>();
const kws = new Map<string, Kw>();
export function sym(name: string): Sym {
  let s = syms.get(name);
  if (!s) syms.set(name, (s = new Sym(name)));
  return s;
}
export function kw(name: string): Kw {
  let k = kws.get(name);
  if (!k) kws.set(name, (k = new Kw(name)));
  return k;
}

/** An immutable list: EMPTY, or a cell with head h and tail t; n = length. */
export class List {
  constructor(public h: any, public t: List | null, public n: number) {}
  *[Symbol.iterator]() {
    let l: List = this;
    while (l.n > 0) { yield l.h; l = l.t!; }
  }
}
export const EMPTY = new List(undefined, null, 0);
export function cons(h: any, t: List): List { return new List(h, t, t.n + 1); }
export function fromArray(a: ArrayLike<any>, start = 0, tail: List = EMPTY): List {
  let l = tail;
  for (let i = a.length - 1; i >= start; i--) l = new List(a[i], l, l.n + 1);
  return l;
}
export function toArray(l: List): any[] {
  const out = new Array(l.n);
  let i = 0;
  for (let c = l; c.n > 0; c = c.t!) out[i++] = c.h;
  return out;
}
export function list(...xs: any[]): List { return fromArray(xs); }

/** An element value: tag, attributes in the order written, children (unflattened). */
export class El {
  constructor(public tag: string, public attrs: [string, any][], public children: any[]) {}
}

/** Raw HTML from a server response (`(raw! "...")`): the only unescaped path. */
export class RawHtml {
  constructor(public html: string) {}
}

export class SxRaise {
  constructor(public value: any) {}
}

export type Val = any;

export const isList = (v: any): v is List => v instanceof List;
export const isInt = (v: any): boolean => typeof v === 'number' || typeof v === 'bigint';
export const isNum = (v: any): boolean => typeof v === 'number' || typeof v === 'bigint' || v instanceof Flt;
export const truthy = (v: any): boolean => v !== null && v !== false && v !== undefined;
