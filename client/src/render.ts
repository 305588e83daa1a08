// Markup values → DOM, with the server's escaping rules by construction:
// text becomes Text nodes and attributes go through setAttribute, so
// nothing is parsed as HTML except RawHtml, which only the wire parser
// makes, and only for responses fetched from the page's own origin.
//
// The same walk either creates nodes or, when hydrating, claims the nodes
// the server already rendered (so server HTML is never re-rendered): text
// is matched (splitting merged text nodes), elements by tag, and only
// reactive parts (signal/computed/function children and attributes, and
// :on-* listeners) are attached.
import { Sym, Kw, List, El, Flt, RawHtml, toArray } from './values';
import { numText, display, serialize, Dict, fail, typeName } from './data';
import { callFn, Lambda, Component, globals, splitAttrs, setIslandWrapper } from './eval';
import { Node as RNode, Owner, effect, effectAfter, untracked, withOwner, withReactiveBuild, Reactive, currentOwner } from './signals';
import { readOne } from './reader';
import { kw } from './values';

const SVG_NS = 'http://www.w3.org/2000/svg';

/** Where rendering puts nodes: before `before`, or (hydrating) claiming from `cur`. */
interface Place {
  parent: Node;
  before: Node | null;
  hyd: boolean;
  cur: Node | null;
  svg: boolean;
  trusted: boolean;
}

export class HydrationMismatch extends Error {}

// ------------------------------------------------------------------ wire → markup

/**
 * Converts a wire value (lists as read) to markup values: `(tag :a "v" child...)`
 * → El, `(<> ...)` → fragment, `(raw! "html")` → RawHtml when `trusted`
 * (otherwise its text is shown escaped). Lists without a symbol head splice.
 */
export function fromWire(v: any, trusted: boolean): any {
  if (v instanceof List) {
    const items = toArray(v);
    const head = items[0];
    if (head instanceof Sym) {
      if (head.name === 'raw!') {
        const html = items.slice(1).map(display).join('');
        return trusted ? new RawHtml(html) : html;
      }
      const rest = items.slice(1);
      const na = splitAttrs(rest);
      const attrs: [string, any][] = [];
      for (let i = 0; i < na; i += 2) attrs.push([(rest[i] as Kw).name, rest[i + 1]]);
      return new El(head.name, attrs, rest.slice(na).map(c => fromWire(c, trusted)));
    }
    return items.map(c => fromWire(c, trusted));
  }
  return v;
}

// ------------------------------------------------------------------ attributes

/** A value's text as `str` gives it (numbers canonical, keywords with their colon). */
export function attrText(v: any): string {
  return typeof v === 'string' ? v : typeof v === 'number' ? String(v) : display(v);
}

/** What the browser follows as a URL (the same list as the server's renderer). */
const URL_ATTRS = new Set('href src action formaction poster cite background longdesc usemap xlink:href data codebase manifest ping srcset sx-get sx-post sx-put sx-patch sx-delete sx-push-url'.split(' '));
export const UNSAFE_URL = 'about:invalid#sx-unsafe-url';

/** Whether a URL attribute value is safe (javascript:, vbscript:, non-image data: are not). */
export function safeUrl(tag: string, name: string, url: string): boolean {
  const cleaned = Array.from(url.replace(/[\x00-\x20\x7f]/g, '')).slice(0, 16).join('').toLowerCase();
  if (cleaned.startsWith('javascript:') || cleaned.startsWith('vbscript:')) return false;
  if (name === 'srcset') return url.split(',').every(c => safeUrl(tag, 'src', c.trimStart()) || c.trim() === '');
  if (cleaned.startsWith('data:')) {
    const imageSink = (name === 'src' || name === 'poster') && ['img', 'video', 'audio', 'source', 'picture', 'input'].includes(tag);
    return imageSink && cleaned.startsWith('data:image/') && !cleaned.startsWith('data:image/svg');
  }
  return true;
}

export const validAttrName = (name: string) => /^[A-Za-z0-9\-_:.@]+$/.test(name);

/**
 * An attribute value as the server renders it: null (left out), true (bare)
 * or text. Lists join their words, leaving out nil/false; unsafe URLs are
 * replaced. Anything else that is not text raises, as on the server.
 */
export function attrValue(tag: string, name: string, v: any): string | true | null {
  if (v === null || v === undefined || v === false) return null;
  if (v === true) return true;
  let text: string;
  if (typeof v === 'string') text = v;
  else if (v instanceof List) {
    const words: string[] = [];
    for (const x of v) {
      if (x === null || x === false) continue;
      if (!isWord(x)) notMarkup(x, ` in attribute ${name}`);
      words.push(display(x));
    }
    text = words.join(' ');
  } else if (isWord(v)) text = display(v);
  else return notMarkup(v, ` as the value of attribute ${name}`);
  return URL_ATTRS.has(name) && !safeUrl(tag, name, text) ? UNSAFE_URL : text;
}
const isWord = (x: any) => typeof x === 'string' || typeof x === 'number' || typeof x === 'bigint' || x instanceof Flt || x instanceof Kw || x instanceof Sym;
function notMarkup(v: any, context: string): never {
  fail('value', `not markup: ${typeName(v)} ${display(v).slice(0, 60)}${context}`);
}

function setAttr(el: Element, name: string, v: any) {
  if (!validAttrName(name)) { console.warn(`sx: bad attribute name ${name}`); return; }
  const a = attrValue(el.localName, name, v);
  if (a === null) el.removeAttribute(name);
  else el.setAttribute(name, a === true ? '' : a);
  // live state of form controls follows the attribute
  if (name === 'value' && 'value' in el) (el as any).value = a === null || a === true ? '' : a;
  else if ((name === 'checked' || name === 'selected') && name in el) (el as any)[name] = a !== null;
}

const callable = (v: any) => v instanceof Lambda || (typeof v === 'function' && !v.sxDisposer);

function guarded(f: any) {
  return (e: Event) => {
    try { callFn(f, [e]); } catch (err) { console.error('sx: event handler failed', err); }
  };
}

function applyAttrs(el: Element, attrs: [string, any][], hyd: boolean, trusted: boolean) {
  for (const [name, v] of attrs) {
    const c0 = name.charCodeAt(0) | 32;
    if (!trusted && ((c0 === 111 && (name.charCodeAt(1) | 32) === 110 && name[2] !== '-') || (c0 === 115 && name.length === 6 && name.toLowerCase() === 'srcdoc'))) {
      // script sinks: island code (and other-origin content) cannot write inline handlers or srcdoc
      console.warn(`sx: attribute ${name} refused in client-rendered content`);
      continue;
    }
    if (name.startsWith('on-') && callable(v)) {
      // the listener goes with its island (a morph may keep the element for a re-hydration)
      const type = name.slice(3), h = guarded(v);
      el.addEventListener(type, h);
      currentOwner()?.add(() => el.removeEventListener(type, h));
    } else if (v instanceof Reactive) {
      if (!hyd) setAttr(el, name, v.value);
      effectAfter(v.sources, () => setAttr(el, name, v.fn()));
    } else if (v instanceof RNode) {
      effect(() => setAttr(el, name, v.get()));
    } else if (callable(v)) {
      effect(() => setAttr(el, name, callFn(v, [])));
    } else if (!hyd) {
      setAttr(el, name, v);
    }
  }
}

// ------------------------------------------------------------------ nodes

function doc(p: Place): Document {
  return (p.parent.ownerDocument || p.parent) as Document;
}

function skipIgnorable(p: Place, whitespace = false) {
  // comments (and our own markers from an earlier life) carry no content;
  // before an element or the end, whitespace-only text is indentation
  while (p.cur && (p.cur.nodeType === 8 || (whitespace && p.cur.nodeType === 3 && !/\S/.test((p.cur as Text).data)))) p.cur = p.cur.nextSibling;
}

function putText(p: Place, text: string): Text {
  if (p.hyd) {
    skipIgnorable(p);
    const n = p.cur;
    if (text === '') {
      const t = doc(p).createTextNode('');
      p.parent.insertBefore(t, n);
      return t;
    }
    if (n && n.nodeType === 3) {
      const t = n as Text;
      if (t.data === text) { p.cur = t.nextSibling; return t; }
      if (t.data.startsWith(text)) { p.cur = t.splitText(text.length); return t; }
    }
    throw new HydrationMismatch(`expected text ${JSON.stringify(text)}`);
  }
  const t = doc(p).createTextNode(text);
  p.parent.insertBefore(t, p.before);
  return t;
}

function putElement(p: Place, v: El): void {
  const svg = p.svg || v.tag === 'svg';
  let el: Element;
  if (p.hyd) {
    skipIgnorable(p, true);
    const n = p.cur;
    if (!n || n.nodeType !== 1 || ((n as Element).localName !== v.tag && (n as Element).localName.toLowerCase() !== v.tag.toLowerCase())) {
      throw new HydrationMismatch(`expected <${v.tag}>`);
    }
    el = n as Element;
    p.cur = n.nextSibling;
  } else {
    if (!p.trusted && v.tag.toLowerCase() === 'script') {
      console.warn('sx: <script> refused in client-rendered content');
      return;
    }
    el = svg ? doc(p).createElementNS(SVG_NS, v.tag) : doc(p).createElement(v.tag);
    p.parent.insertBefore(el, p.before);
  }
  applyAttrs(el, v.attrs, p.hyd, p.trusted);
  const inner: Place = {
    parent: el, before: null, hyd: p.hyd, cur: el.firstChild,
    svg: svg && v.tag !== 'foreignObject', trusted: p.trusted,
  };
  for (const c of v.children) put(inner, c);
  if (p.hyd) {
    skipIgnorable(inner, true);
    if (inner.cur) throw new HydrationMismatch(`unexpected content at the end of <${v.tag}>`);
  }
}

function putRaw(p: Place, html: string) {
  const t = doc(p).createElement('template');
  t.innerHTML = html;
  p.parent.insertBefore(t.content, p.before);
}

const isTextValue = (v: any) => typeof v === 'string' || typeof v === 'number' || typeof v === 'bigint' || v instanceof Flt;

/**
 * A reactive region: shows whatever `thunk` returns. While the value is
 * text it is one Text node updated in place; markup is re-rendered between
 * two comment markers, created the first time they are needed.
 */
function putRegion(p: Place, thunk: () => any, initial?: Reactive) {
  const d = doc(p);
  let start: Comment | null = null, end: Comment | null = null;
  let text: Text | null = null;
  let first = true;
  const show = (v: any) => {
    untracked(() => {
      const isText = isTextValue(v);
      if (first) {
        first = false;
        if (isText) { text = putText(p, attrText(v)); return; }
        start = d.createComment('sx');
        end = d.createComment('/sx');
        p.parent.insertBefore(start, p.hyd ? p.cur : p.before);
        const q: Place = { ...p, before: p.hyd ? null : p.before };
        put(q, v);
        if (p.hyd) p.cur = q.cur;
        p.parent.insertBefore(end, p.hyd ? p.cur : p.before);
        return;
      }
      if (isText && text && text.parentNode) { text.data = attrText(v); return; }
      if (!start || !end) {
        // was a text node: put markers around it
        const t = text!;
        if (!t.parentNode) return;
        start = d.createComment('sx');
        end = d.createComment('/sx');
        t.parentNode.insertBefore(start, t);
        t.parentNode.insertBefore(end, t.nextSibling);
      }
      const parent = end!.parentNode;
      if (!parent) return;
      while (start!.nextSibling && start!.nextSibling !== end) parent.removeChild(start!.nextSibling);
      put({ parent, before: end, hyd: false, cur: null, svg: p.svg, trusted: p.trusted }, v);
      text = isText && start!.nextSibling !== end ? (start!.nextSibling as Text) : null;
    });
  };
  if (initial) effectAfter(initial.sources, () => show(thunk()), () => show(initial.value));
  else effect(() => show(thunk()));
}

/** Renders (or hydrates) one child value at `p`. */
export function put(p: Place, v: any): void {
  if (v === null || v === undefined || v === false) return;
  if (typeof v === 'string') { if (v !== '' || p.hyd === false) putText(p, v); return; }
  if (typeof v === 'number' || typeof v === 'bigint' || v instanceof Flt) { putText(p, numText(v)); return; }
  if (v instanceof El) {
    if (v.tag === '<>') { for (const c of v.children) put(p, c); return; }
    putElement(p, v);
    return;
  }
  if (v instanceof List) { for (const c of v) put(p, c); return; }
  if (Array.isArray(v)) { for (const c of v) put(p, c); return; }
  if (v instanceof RawHtml) {
    if (p.trusted && !p.hyd) putRaw(p, v.html);
    else putText(p, v.html);
    return;
  }
  if (v instanceof Reactive) { putRegion(p, v.fn, v); return; }
  if (v instanceof RNode) { if (!v.isEffect) putRegion(p, () => v.get()); return; }
  if (typeof v === 'function' && v.sxDisposer) return; // a bare (effect ...) in a body
  if (callable(v)) { putRegion(p, () => callFn(v, [])); return; }
  putText(p, display(v));
}

/** Renders markup into a new DocumentFragment (owner: the current one). */
export function renderFragment(v: any, d: Document, trusted = false): DocumentFragment {
  const frag = d.createDocumentFragment();
  put({ parent: frag, before: null, hyd: false, cur: null, svg: false, trusted }, v);
  return frag;
}

// ------------------------------------------------------------------ islands

const islandOwners = new WeakMap<Element, Owner>();
const processedScripts = new WeakSet<Element>();
const evaluatedSources = new Set<string>();
export let hydrationMismatches = 0;

/** A call of a defisland component renders inside the same <sx-island> wrapper as on the server. */
setIslandWrapper((comp: Component, args: any[], result: any) => {
  const props: any[] = [];
  for (let i = 0; i + 1 < args.length; i += 2) if (args[i] instanceof Kw) props.push(args[i], args[i + 1]);
  return new El('sx-island', [['data-sx-island', comp.sxName], ['data-sx-props', serialize(Dict.of(...props))]], [result]);
});

const propsCache = new Map<string, any[]>();   // props text → arguments (values are immutable)
function islandArgs(el: Element): any[] {
  const text = el.getAttribute('data-sx-props');
  if (!text) return [];
  const hit = propsCache.get(text);
  if (hit) return hit;
  const d = readOne(text);
  if (!(d instanceof Dict)) throw new Error('data-sx-props is not a dict');
  const args: any[] = [];
  for (const [, k, v] of d.sorted()) args.push(k instanceof Kw ? k : kw(String(k)), v);
  if (propsCache.size > 500) propsCache.clear();
  propsCache.set(text, args);
  return args;
}

/** Hydrates one <sx-island> over its server HTML. Returns false if its definition is missing. */
export function hydrateIsland(el: Element): boolean {
  if (islandOwners.has(el)) return true;
  const name = el.getAttribute('data-sx-island') || '';
  const comp = globals.get(name)?.v;
  if (!(comp instanceof Component)) return false;
  const args = islandArgs(el);
  let owner = new Owner();
  islandOwners.set(el, owner);
  try {
    withOwner(owner, () => untracked(() => withReactiveBuild(true, () => {
      const tree = callFn(comp.fn, args);
      const p: Place = { parent: el, before: null, hyd: true, cur: el.firstChild, svg: false, trusted: false };
      put(p, tree);
      skipIgnorable(p, true);
      if (p.cur) throw new HydrationMismatch('unexpected content at the end of the island');
    })));
  } catch (e) {
    owner.dispose();
    if (!(e instanceof HydrationMismatch)) { islandOwners.delete(el); throw e; }
    // the server HTML does not match the island's first render: render it afresh
    hydrationMismatches++;
    console.warn(`sx: island ${name}: ${e.message}; rendering it on the client`);
    owner = new Owner();
    islandOwners.set(el, owner);
    withOwner(owner, () => untracked(() => withReactiveBuild(true, () => {
      const tree = callFn(comp.fn, args);
      el.replaceChildren();
      put({ parent: el, before: null, hyd: false, cur: null, svg: false, trusted: false }, tree);
    })));
  }
  return true;
}

export function isHydrated(el: Element) { return islandOwners.has(el); }

/** Disposes every hydrated island at or under `root` (their effects stop). */
export function disposeIslands(root: Node) {
  const els: Element[] = [];
  if (root.nodeType === 1 && (root as Element).tagName.toLowerCase() === 'sx-island') els.push(root as Element);
  if ((root as Element).querySelectorAll) els.push(...(root as Element).querySelectorAll('sx-island'));
  for (const el of els) {
    const o = islandOwners.get(el);
    if (o) { o.dispose(); islandOwners.delete(el); }
  }
}

/**
 * Evaluates new <script type="text/sx"> definitions, then hydrates the
 * islands at or under `root` that are not inside another island.
 */
export function processSx(root: ParentNode, evalSource: (src: string) => void) {
  const scripts: Element[] = [];
  if ((root as Element).matches?.('script[type="text/sx"]')) scripts.push(root as Element);
  scripts.push(...root.querySelectorAll('script[type="text/sx"]'));
  for (const s of scripts) {
    if (processedScripts.has(s)) continue;
    processedScripts.add(s);
    // the same definitions arriving again (navigating back to a page) are not re-run,
    // so a top-level (define shared (signal 0)) keeps the signal the live islands use
    const src = s.textContent || '';
    if (evaluatedSources.has(src)) continue;
    evaluatedSources.add(src);
    try { evalSource(src); } catch (e) { console.error('sx: evaluating <script type="text/sx"> failed', e); }
  }
  const islands: Element[] = [];
  if ((root as Element).matches?.('sx-island[data-sx-island]')) islands.push(root as Element);
  islands.push(...root.querySelectorAll('sx-island[data-sx-island]'));
  for (const el of islands) {
    if (el.parentElement?.closest('sx-island')) continue;
    try {
      if (!hydrateIsland(el)) console.warn(`sx: island ${el.getAttribute('data-sx-island')} has no definition`);
    } catch (e) {
      console.error(`sx: island ${el.getAttribute('data-sx-island')} failed`, e);
    }
  }
}

export { Owner, untracked, withOwner };
export type { Place };
export const _internal = { Component };
