// render-html in JS, with the server's rules (sx-web html.rs): used by the
// node tests to check that the client's markup rules (text, attribute
// values, URL neutralisation) agree with the server's. Not in the browser
// bundle: the browser renders to DOM nodes, never to HTML text.
import { Flt, Kw, Sym, List, El, RawHtml } from './values';
import { Lambda } from './eval';
import { numText, display, fail, typeName } from './data';
import { attrValue, validAttrName } from './render';
import { def } from './prims';

const VOID = new Set('area base br col embed hr img input link meta source track wbr'.split(' '));
const escText = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const escAttr = (s: string) => escText(s).replace(/"/g, '&quot;').replace(/'/g, '&#39;');

export function renderHtml(v: any): string {
  if (v === null || v === false) return '';
  if (typeof v === 'string') return escText(v);
  if (typeof v === 'number' || typeof v === 'bigint' || v instanceof Flt) return numText(v);
  if (v === true || v instanceof Kw || v instanceof Sym) return escText(display(v));
  if (v instanceof List) return [...v].map(renderHtml).join('');
  if (v instanceof RawHtml) return v.html;
  if (v instanceof El) {
    if (v.tag === '<>') return v.children.map(renderHtml).join('');
    let out = '<' + v.tag;
    for (const [name, val] of v.attrs) {
      if (!validAttrName(name)) fail('value', `bad attribute name ${name}`);
      // As sx-web: a function (an island's :on-click handler) is left out.
      if (val instanceof Lambda || typeof val === 'function') continue;
      const a = attrValue(v.tag, name, val);
      if (a === true) out += ' ' + name;
      else if (a !== null) out += ` ${name}="${escAttr(a)}"`;
    }
    out += '>';
    if (VOID.has(v.tag)) return out;
    return out + v.children.map(renderHtml).join('') + `</${v.tag}>`;
  }
  return fail('value', `not markup: ${typeName(v)}`);
}

def('render-html', 1, 1, renderHtml);
def('raw!', 1, 1, s => { if (typeof s !== 'string') fail('type', 'raw!: expected a string'); return new RawHtml(s); });
