// The SX reader (docs/sx.md "Syntax"): text → values. Used for the wire
// format, island props, island source in <script type="text/sx">, and
// `read-string`.
import { Flt, sym, kw, fromArray, List } from './values';
import { Dict, fail, keyText } from './data';

const DELIMS = new Set(['(', ')', '[', ']', '{', '}', '"', ';', "'", '`', ',']);
const isSpace = (c: string) => c === ' ' || c === '\n' || c === '\t' || c === '\r' || c === '\f';
const I64_MAX = 9223372036854775807n, I64_MIN = -9223372036854775808n;

/** Normalizes a BigInt: a safe integer becomes a number; outside i64 is null. */
export function normInt(b: bigint): number | bigint | null {
  if (b > I64_MAX || b < I64_MIN) return null;
  if (b >= -9007199254740991n && b <= 9007199254740991n) return Number(b);
  return b;
}

export function parseNumber(tok: string): any {
  if (!/[.eE]/.test(tok)) {
    if (!/^[+-]?\d+$/.test(tok)) return undefined;
    if (tok.length < 16) return Number(tok);
    const v = normInt(BigInt(tok.replace(/^\+/, '')));
    if (v === null) throw readError(`integer literal out of range: ${tok}`);
    return v;
  }
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(tok)) return undefined;
  const f = Number(tok);
  return isFinite(f) ? new Flt(f) : undefined;
}

function readError(msg: string) {
  try { fail('read', 'read error: ' + msg); } catch (e) { return e; }
}

class Reader {
  i = 0;
  constructor(public s: string) {}
  where(at: number) {
    const before = this.s.slice(0, at);
    const line = before.split('\n').length;
    const col = at - before.lastIndexOf('\n');
    return `${line}:${col}`;
  }
  err(msg: string, at = this.i): never { throw readError(`${this.where(at)}: ${msg}`); }
  skip() {
    const s = this.s;
    while (this.i < s.length) {
      const c = s[this.i];
      if (isSpace(c)) this.i++;
      else if (c === ';') { while (this.i < s.length && s[this.i] !== '\n') this.i++; }
      else break;
    }
  }
  /** Reads one form; the caller has skipped space and checked there is input. */
  form(): any {
    const s = this.s, start = this.i, c = s[this.i];
    if (c === '(' || c === '[' || c === '{') {
      const close = c === '(' ? ')' : c === '[' ? ']' : '}';
      this.i++;
      const items: any[] = [];
      for (;;) {
        this.skip();
        if (this.i >= s.length) this.err(`unexpected end of input: expected \`${close}\` to close the list opened here`, start);
        const d = s[this.i];
        if (d === ')' || d === ']' || d === '}') {
          if (d !== close) this.err(`unexpected \`${d}\`: expected \`${close}\``);
          this.i++;
          break;
        }
        items.push(this.form());
      }
      if (close !== '}') return fromArray(items);
      if (items.length % 2) this.err('a dict needs an even number of forms', start);
      const d = new Dict();
      for (let j = 0; j < items.length; j += 2) {
        let t: string;
        try { t = keyText(items[j]); } catch { this.err('bad dict key', start); }
        if (d.m.has(t)) this.err(`duplicate dict key ${t}`, start);
        d.m.set(t, [t, items[j], items[j + 1]]);
      }
      return d;
    }
    if (c === ')' || c === ']' || c === '}') this.err(`unexpected \`${c}\`: no list is open`);
    if (c === "'" || c === '`' || c === ',') {
      this.i++;
      let name = c === "'" ? 'quote' : c === '`' ? 'quasiquote' : 'unquote';
      if (c === ',' && s[this.i] === '@') { this.i++; name = 'unquote-splicing'; }
      this.skip();
      if (this.i >= s.length) this.err(`unexpected end of input after \`${c}\``, start);
      const cc = s[this.i];
      if (cc === ')' || cc === ']' || cc === '}') this.err(`\`${c}\` before \`${cc}\``, start);
      return fromArray([sym(name), this.form()]);
    }
    if (c === '"') return this.string();
    while (this.i < s.length && !DELIMS.has(s[this.i]) && !isSpace(s[this.i])) this.i++;
    const tok = s.slice(start, this.i);
    if (tok === 'nil') return null;
    if (tok === 'true') return true;
    if (tok === 'false') return false;
    if (tok[0] === ':') {
      if (tok.length === 1) this.err('empty keyword', start);
      return kw(tok.slice(1));
    }
    const p = tok[0] === '-' || tok[0] === '+' ? 1 : 0;
    const d0 = tok[p];
    if ((d0 >= '0' && d0 <= '9') || (d0 === '.' && tok[p + 1] >= '0' && tok[p + 1] <= '9')) {
      const n = parseNumber(tok);
      if (n === undefined) this.err(`bad number \`${tok}\``, start);
      return n;
    }
    return sym(tok);
  }
  string(): string {
    const s = this.s, start = this.i;
    this.i++;
    let out = '';
    let from = this.i;
    for (;;) {
      if (this.i >= s.length) this.err('unclosed string', start);
      const c = s[this.i];
      if (c === '"') { out += s.slice(from, this.i); this.i++; return out; }
      if (c !== '\\') { this.i++; continue; }
      out += s.slice(from, this.i);
      const at = this.i;
      const e = s[this.i + 1];
      this.i += 2;
      if (e === '"') out += '"';
      else if (e === '\\') out += '\\';
      else if (e === 'n') out += '\n';
      else if (e === 't') out += '\t';
      else if (e === 'r') out += '\r';
      else if (e === 'u') {
        const m = /^\{([0-9a-fA-F]{1,6})\}/.exec(s.slice(this.i, this.i + 9));
        if (!m) this.err('bad \\u escape: expected \\u{1 to 6 hex digits}', at);
        const code = parseInt(m[1], 16);
        if (code > 0x10ffff || (code >= 0xd800 && code < 0xe000)) this.err('not a Unicode scalar value', at);
        out += String.fromCodePoint(code);
        this.i += m[0].length;
      } else if (e === undefined) this.err('unclosed string', start);
      else this.err(`bad escape \\${e}`, at);
      from = this.i;
    }
  }
}

/** Reads every form in `text`. */
export function readAll(text: string): any[] {
  const r = new Reader(text);
  const out: any[] = [];
  for (;;) {
    r.skip();
    if (r.i >= text.length) return out;
    out.push(r.form());
  }
}

/** Reads exactly one form. */
export function readOne(text: string): any {
  const forms = readAll(text);
  if (forms.length !== 1) fail('read', `read-string: expected exactly one form, got ${forms.length}`);
  return forms[0];
}

export type { List };
