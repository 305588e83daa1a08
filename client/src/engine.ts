// The hypermedia engine: sx-* attributes with htmx 2 semantics, SX wire
// and HTML responses, out-of-band swaps, client navigation (sx-boost) with
// back/forward by refetching, and island hydration/disposal around swaps.
import { Idiomorph } from 'idiomorph';
import { readOne } from './reader';
import { evalString } from './eval';
import { El, List, Sym, Kw, toArray } from './values';
import { Dict, display } from './data';
import { fromWire, renderFragment, processSx, disposeIslands, isHydrated, attrText } from './render';

let W: Window & typeof globalThis;
/** Timings for diagnostics: how long start() took to wire the page and hydrate its islands. */
export const stats = { startMs: 0 };
let D: Document;
const VERBS = ['get', 'post', 'put', 'patch', 'delete'];
const processed = new WeakMap<Element, () => void>();   // element → teardown of its triggers
const inflight = new WeakMap<object, AbortController>();

// ------------------------------------------------------------------ helpers

export function parseTime(s: string | undefined): number {
  if (!s) return 0;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(s.trim());
  if (!m) return 0;
  const n = parseFloat(m[1]);
  return m[2] === 's' ? n * 1000 : m[2] === 'm' ? n * 60000 : n;
}

function emit(el: EventTarget, name: string, detail: any = {}, cancelable = true): boolean {
  const ev = new W.CustomEvent(name, { bubbles: true, cancelable, detail });
  return el.dispatchEvent(ev);
}

/** The nearest value of an inheritable attribute (the element's own, or an ancestor's). */
function inherited(el: Element, name: string): [string, Element] | null {
  const a = el.closest(`[${name}]`);
  return a ? [a.getAttribute(name)!, a] : null;
}

/** Extended selectors: `this`, `closest X`, `find X`, `next X`, `previous X`, `document`, `window`, or CSS. */
export function resolveTargets(el: Element, sel: string): Element[] {
  sel = sel.trim();
  if (sel === 'this') return [el];
  if (sel.startsWith('closest ')) { const t = el.closest(sel.slice(8)); return t ? [t] : []; }
  if (sel.startsWith('find ')) { const t = el.querySelector(sel.slice(5)); return t ? [t] : []; }
  if (sel.startsWith('next ')) {
    const all = [...D.querySelectorAll(sel.slice(5))];
    const t = all.find(x => el.compareDocumentPosition(x) & 4);
    return t ? [t] : [];
  }
  if (sel.startsWith('previous ')) {
    const all = [...D.querySelectorAll(sel.slice(9))].reverse();
    const t = all.find(x => el.compareDocumentPosition(x) & 2);
    return t ? [t] : [];
  }
  if (sel === 'body') return [D.body];
  return [...D.querySelectorAll(sel)];
}

function getTarget(el: Element, attr = 'sx-target'): Element | null {
  const t = inherited(el, attr);
  if (!t) return attr === 'sx-target' ? el : null;
  // `this` in an inherited attribute means the element carrying it
  return t[0].trim() === 'this' ? t[1] : resolveTargets(el, t[0])[0] || null;
}

function csrfToken(): string | null {
  return D.querySelector('meta[name="csrf-token"]')?.getAttribute('content') ?? null;
}

// ------------------------------------------------------------------ parameters

type Params = [string, string | File][];

function formFields(form: Element, out: Params, submitter?: Element | null) {
  const f = form as HTMLFormElement;
  const fd = new W.FormData(f.tagName === 'FORM' ? f : undefined);
  if (f.tagName === 'FORM') {
    for (const [k, v] of fd as any) out.push([k, v]);
    if (submitter && (submitter as HTMLButtonElement).name) out.push([(submitter as HTMLButtonElement).name, (submitter as HTMLButtonElement).value]);
  } else {
    // not a form: its own value and the named controls inside it
    const els = [f, ...f.querySelectorAll('input,select,textarea')];
    for (const e of els) addValue(e, out);
  }
}

function addValue(e: Element, out: Params) {
  const i = e as HTMLInputElement;
  if (!i.name || i.disabled) return;
  const tag = e.tagName;
  if (tag !== 'INPUT' && tag !== 'SELECT' && tag !== 'TEXTAREA' && tag !== 'BUTTON') return;
  if ((i.type === 'checkbox' || i.type === 'radio') && !i.checked) return;
  if (tag === 'SELECT' && (e as HTMLSelectElement).multiple) {
    for (const o of (e as HTMLSelectElement).selectedOptions) out.push([i.name, o.value]);
    return;
  }
  out.push([i.name, i.value]);
}

/** sx-vals: an SX dict `{:a 1}` or a JSON object; inherited values merge (nearest wins). */
function parseVals(text: string): [string, string][] {
  const t = text.trim();
  try {
    const j = JSON.parse(t);
    if (j && typeof j === 'object') return Object.entries(j).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]);
  } catch { /* not JSON */ }
  const d = readOne(t);
  if (!(d instanceof Dict)) return [];
  return d.sorted().map(([, k, v]) => [k instanceof Kw ? k.name : display(k), display(v)]);
}

function gatherParams(el: Element, verb: string, submitter?: Element | null): Params {
  const out: Params = [];
  const form = el.tagName === 'FORM' ? el : verb !== 'get' ? el.closest('form') : null;
  if (form) formFields(form, out, submitter);
  if (el !== form && !form?.contains(el)) addValue(el, out);
  const inc = inherited(el, 'sx-include');
  if (inc) for (const t of resolveTargets(el, inc[0])) formFields(t, out);
  const vals: [string, string][] = [];
  for (let a: Element | null = el.closest('[sx-vals]'); a; a = a.parentElement?.closest('[sx-vals]') ?? null) {
    try { vals.unshift(...parseVals(a.getAttribute('sx-vals')!)); } catch (e) { console.error('sx: bad sx-vals', e); }
  }
  // nearest definition wins: drop earlier pairs with the same name
  const seen = new Map<string, string>();
  for (const [k, v] of vals) seen.set(k, v);
  for (const [k, v] of seen) {
    for (let i = out.length - 1; i >= 0; i--) if (out[i][0] === k) out.splice(i, 1);
    out.push([k, v]);
  }
  return out;
}

// ------------------------------------------------------------------ swapping

export interface SwapSpec { style: string; scroll?: string; show?: string; focusScroll?: boolean }

export function parseSwap(s: string | null | undefined): SwapSpec {
  const parts = (s || 'innerHTML').trim().split(/\s+/);
  const spec: SwapSpec = { style: parts[0] || 'innerHTML' };
  for (const p of parts.slice(1)) {
    if (p.startsWith('scroll:')) spec.scroll = p.slice(7);
    else if (p.startsWith('show:')) spec.show = p.slice(5);
  }
  return spec;
}

const morphConfig = {
  ignoreActiveValue: true,
  callbacks: {
    // a hydrated island keeps its live DOM: the server copy would reset its state
    beforeNodeMorphed: (oldNode: Node, newNode: Node) => {
      if (oldNode.nodeType === 1 && (oldNode as Element).tagName === 'SX-ISLAND' && isHydrated(oldNode as Element)) {
        const n = newNode as Element;
        const o = oldNode as Element;
        return !(n.getAttribute?.('data-sx-island') === o.getAttribute('data-sx-island') && n.getAttribute?.('data-sx-props') === o.getAttribute('data-sx-props')) && (disposeIslands(o), true);
      }
      return true;
    },
    beforeNodeRemoved: (n: Node) => { disposeIslands(n); return true; },
  },
};

/** Swaps `frag` into `target`; returns the nodes that now hold new content. */
export function swap(target: Element, frag: DocumentFragment, spec: SwapSpec): Element[] {
  const kids = [...frag.childNodes];
  const parent = target.parentNode;
  let settled: Element[] = kids.filter(n => n.nodeType === 1) as Element[];
  switch (spec.style) {
    case 'innerHTML':
      for (const c of target.childNodes) disposeIslands(c);
      target.replaceChildren(frag);
      settled = [target];
      break;
    case 'outerHTML':
      disposeIslands(target);
      target.replaceWith(frag);
      break;
    case 'beforebegin': parent?.insertBefore(frag, target); break;
    case 'afterbegin': target.insertBefore(frag, target.firstChild); break;
    case 'beforeend': target.appendChild(frag); break;
    case 'afterend': parent?.insertBefore(frag, target.nextSibling); break;
    case 'delete': disposeIslands(target); target.remove(); settled = []; break;
    case 'none': settled = []; break;
    case 'morph': case 'morph:innerHTML':
      Idiomorph.morph(target, frag, { morphStyle: 'innerHTML', ...morphConfig } as any);
      settled = [target];
      break;
    case 'morph:outerHTML': {
      const res = Idiomorph.morph(target, frag, { morphStyle: 'outerHTML', ...morphConfig } as any) as any;
      settled = (res || []).filter((n: Node) => n.nodeType === 1);
      break;
    }
    default:
      console.error(`sx: unknown swap style ${spec.style}`);
      settled = [];
  }
  for (const n of settled) {
    if (!n.isConnected) continue;
    processNode(n);
    processSx(n, evalString);
    emit(n, 'sx:load', {}, false);
  }
  if (spec.scroll) {
    const top = spec.scroll === 'top';
    target.scrollTop = top ? 0 : target.scrollHeight;
  }
  if (spec.show) target.scrollIntoView?.({ block: spec.show === 'bottom' ? 'end' : 'start' });
  return settled;
}

// ------------------------------------------------------------------ responses

export interface Content { frag: DocumentFragment; title: string | null }

function sameOrigin(url: string): boolean {
  if (!url) return true;
  try { return new URL(url, W.location.href).origin === W.location.origin; } catch { return false; }
}

/** Turns a response body into a fragment; takes a top-level `<title>` out as the title. */
export function parseContent(text: string, type: string, trusted: boolean): Content {
  let title: string | null = null;
  if (/^text\/sx\b/.test(type)) {
    const markup = text.trim() === '' ? null : fromWire(readOne(text), trusted);
    const top = markup instanceof El && markup.tag === '<>' ? markup.children : [markup];
    const kept = top.filter(c => {
      if (c instanceof El && c.tag === 'title') { title = c.children.map(display).join(''); return false; }
      return true;
    });
    return { frag: renderFragment(kept, D, trusted), title };
  }
  // HTML: a whole document contributes its #main (or body); a fragment is used as it is
  let html = text;
  if (/<html[\s>]|<body[\s>]/i.test(text)) {
    const doc = new W.DOMParser().parseFromString(text, 'text/html');
    title = doc.querySelector('title')?.textContent ?? null;
    html = (doc.querySelector('#main') || doc.body).innerHTML;
  }
  const t = D.createElement('template');
  t.innerHTML = html;
  const tt = t.content.querySelector(':scope > title');
  if (tt) { title = tt.textContent; tt.remove(); }
  return { frag: D.importNode(t.content, true) as DocumentFragment, title };
}

/** Pulls top-level elements marked sx-swap-oob out of `frag` and swaps them by id (or selector). */
function oobSwaps(frag: DocumentFragment) {
  for (const el of [...frag.children]) {
    const oob = el.getAttribute('sx-swap-oob');
    if (oob === null) continue;
    el.remove();
    el.removeAttribute('sx-swap-oob');
    let style = oob.trim() || 'true', sel = '#' + el.id;
    const colon = style.indexOf(':');
    if (colon > 0 && !style.startsWith('morph:')) { sel = style.slice(colon + 1); style = style.slice(0, colon); }
    if (style === 'true') style = 'outerHTML';
    for (const target of D.querySelectorAll(sel)) {
      const f = D.createDocumentFragment();
      if (style === 'outerHTML' || style === 'morph:outerHTML') f.appendChild(el.cloneNode(true));
      else for (const c of [...el.childNodes]) f.appendChild(c.cloneNode(true));
      swap(target, f, parseSwap(style));
    }
  }
}

function fireTriggerHeader(el: Element, value: string | null) {
  if (!value) return;
  const target = el.isConnected ? el : D.body;
  try {
    const j = JSON.parse(value);
    if (j && typeof j === 'object') { for (const [name, detail] of Object.entries(j)) emit(target, name, detail, false); return; }
  } catch { /* a plain list of names */ }
  for (const name of value.split(',')) if (name.trim()) emit(target, name.trim(), {}, false);
}

// ------------------------------------------------------------------ history and scroll

interface HistState { sx: true; target: string; scroll?: number }
let navTarget = '#main';

function saveScroll() {
  const st = (W.history.state || {}) as HistState;
  if (st.sx) W.history.replaceState({ ...st, scroll: W.scrollY }, '');
}

function pushUrl(url: string, target = navTarget) {
  W.history.pushState({ sx: true, target, scroll: 0 } as HistState, '', url);
}

// ------------------------------------------------------------------ requests

export interface RequestOpts {
  el: Element;
  verb: string;
  url: string;
  target?: Element | null;
  swap?: SwapSpec;
  submitter?: Element | null;
  push?: string | null;        // URL to push afterwards, 'true' for the request URL
  boost?: boolean;
  restore?: boolean;           // history restore: no push
  scroll?: number;             // scroll to restore after the swap
  params?: Params;
}

/** Issues a request for `el` and swaps the response; resolves when done. */
export async function request(o: RequestOpts): Promise<void> {
  const { el, verb } = o;
  const confirmMsg = inherited(el, 'sx-confirm');
  if (confirmMsg && !o.restore && !W.confirm(confirmMsg[0])) return;
  if (!sameOrigin(new URL(o.url, W.location.href).href)) {
    // as htmx 2's selfRequestsOnly: responses are swapped into the page, so only the page's own origin may answer
    console.error(`sx: refusing a request to another origin: ${o.url}`);
    emit(el, 'sx:sendError', { error: 'cross-origin' }, false);
    return;
  }
  const target = o.target !== undefined ? o.target : getTarget(el);
  if (!emit(el, 'sx:beforeRequest', { verb, url: o.url, target })) return;
  const params = o.params ?? gatherParams(el, verb, o.submitter);
  let url = o.url;
  const headers: Record<string, string> = {
    'SX-Request': 'true',
    'SX-Target': target?.id || '',
    'SX-Current-URL': W.location.href,
    Accept: 'text/sx, text/html;q=0.9',
  };
  if (o.boost) headers['SX-Boosted'] = 'true';
  if (o.restore) headers['SX-History-Restore'] = 'true';
  if (el.id) headers['SX-Trigger'] = el.id;
  const extra = inherited(el, 'sx-headers');
  if (extra) { try { for (const [k, v] of parseVals(extra[0])) headers[k] = v; } catch (e) { console.error('sx: bad sx-headers', e); } }
  let body: any = undefined;
  if (verb === 'get' || verb === 'delete') {
    if (params.length) {
      const u = new URL(url, W.location.href);
      for (const [k, v] of params) u.searchParams.append(k, String(v));
      url = u.pathname + u.search + u.hash;
      if (!sameOrigin(o.url)) url = u.href;
    }
  } else {
    const csrf = csrfToken();
    if (csrf) headers['X-CSRF-Token'] = csrf;
    const multipart = (el.closest('form')?.getAttribute('enctype') || '').includes('multipart');
    if (multipart || params.some(([, v]) => typeof v !== 'string')) {
      body = new W.FormData();
      for (const [k, v] of params) body.append(k, v);
    } else {
      body = new URLSearchParams(params as [string, string][]).toString();
      headers['Content-Type'] = 'application/x-www-form-urlencoded';
    }
  }
  // a newer request from the same element (or a newer navigation) wins
  const key = o.boost ? NAV : el;
  inflight.get(key)?.abort();
  const ac = new AbortController();
  inflight.set(key, ac);
  const indicators = indicatorsFor(el);
  for (const i of indicators) i.classList.add('sx-request');
  const dis = inherited(el, 'sx-disabled-elt');
  const disabled = dis ? resolveTargets(el, dis[0]).filter(d => !(d as HTMLButtonElement).disabled) : [];
  for (const d of disabled) (d as HTMLButtonElement).disabled = true;
  let res: Response;
  try {
    res = await W.fetch(url, { method: verb.toUpperCase(), headers, body, credentials: 'same-origin', signal: ac.signal });
  } catch (e) {
    if ((e as Error).name !== 'AbortError') { console.error('sx: request failed', e); emit(el, 'sx:sendError', { error: e }, false); }
    return;
  } finally {
    for (const i of indicators) i.classList.remove('sx-request');
    for (const d of disabled) (d as HTMLButtonElement).disabled = false;
    if (inflight.get(key) === ac) inflight.delete(key);
  }
  emit(el, 'sx:afterRequest', { status: res.status }, false);
  await handleResponse(o, res, url, target, ac.signal);
}
const NAV = {} as Element;   // the inflight key of client navigations

function indicatorsFor(el: Element): Element[] {
  const ind = inherited(el, 'sx-indicator');
  return ind ? resolveTargets(el, ind[0]) : [el];
}

async function handleResponse(o: RequestOpts, res: Response, url: string, target: Element | null, signal: AbortSignal) {
  const el = o.el, h = (n: string) => res.headers.get(n);
  const redirect = h('SX-Redirect');
  if (redirect) { W.location.href = redirect; return; }
  const loc = h('SX-Location');
  if (loc) { await navigate(loc); return; }
  if (h('SX-Refresh') === 'true') { W.location.reload(); return; }
  let swapSpec = o.swap ?? parseSwap(inherited(el, 'sx-swap')?.[0]);
  const isError = res.status >= 400;
  if (isError) {
    emit(el, 'sx:responseError', { status: res.status }, false);
    // errors swap only where the page asks: sx-target-error (and optionally
    // sx-swap-error) — except in client navigation, where the server sent a
    // whole page (a form shown again with its errors, a 404 page) that a
    // browser without the runtime would show too.
    if (!o.boost) target = getTarget(el, 'sx-target-error');
    const es = inherited(el, 'sx-swap-error');
    if (es) swapSpec = parseSwap(es[0]);
  }
  const retarget = h('SX-Retarget');
  if (retarget) target = resolveTargets(el, retarget)[0] || null;
  const reswap = h('SX-Reswap');
  if (reswap) swapSpec = parseSwap(reswap);
  let text: string;
  try { text = await res.text(); } catch { return; }   // aborted by a newer request
  if (signal.aborted) return;
  fireTriggerHeader(el, h('SX-Trigger'));
  if (res.status === 204 || !target) return;
  const trusted = sameOrigin(res.url || url);
  let content: Content;
  try {
    content = parseContent(text, h('Content-Type') || 'text/html', trusted);
  } catch (e) {
    console.error('sx: could not read the response', e);
    emit(el, 'sx:responseError', { status: res.status, error: e }, false);
    return;
  }
  const sxTitle = h('SX-Title');
  const title = sxTitle !== null ? decodeURIComponent(sxTitle.replace(/\+/g, ' ')) : content.title;
  if (!emit(el, 'sx:beforeSwap', { target, content: content.frag, status: res.status })) return;
  // the scroll position of the entry being left, before the swap changes the page's height
  if (!o.restore) saveScroll();
  oobSwaps(content.frag);
  const select = inherited(el, 'sx-select');
  if (select) {
    const picked = D.createDocumentFragment();
    for (const n of content.frag.querySelectorAll(select[0])) picked.appendChild(n);
    content.frag = picked;
  }
  swap(target, content.frag, swapSpec);
  if (title !== null && (o.boost || o.restore || o.push)) D.title = title;
  // history: a header wins over the attribute
  if (!o.restore && !isError) {
    const hp = h('SX-Push-Url'), hr = h('SX-Replace-Url');
    let push = hp ?? o.push ?? inherited(el, 'sx-push-url')?.[0] ?? null;
    if (push === 'false') push = null;
    if (push === 'redirect') push = res.redirected && res.url ? res.url : null;
    if (push === 'true') push = res.redirected && res.url ? res.url : o.verb === 'get' ? url : o.url;
    if (hr && hr !== 'false') W.history.replaceState({ sx: true, target: navTarget } as HistState, '', hr === 'true' ? o.url : hr);
    else if (push) pushUrl(push, o.boost ? selectorOf(target) : navTarget);
  }
  if (o.boost && !o.restore) {
    const hash = new URL(res.url || url, W.location.href).hash || new URL(o.url, W.location.href).hash;
    const anchor = hash ? D.getElementById(decodeURIComponent(hash.slice(1))) : null;
    if (anchor) anchor.scrollIntoView?.(); else W.scrollTo(0, 0);
  }
  if (o.restore && o.scroll) W.scrollTo(0, o.scroll);
  emit(el.isConnected ? el : D.body, 'sx:afterSwap', { target }, false);
  fireTriggerHeader(el, h('SX-Trigger-After-Swap'));
  fireTriggerHeader(el, h('SX-Trigger-After-Settle'));
}

function selectorOf(t: Element | null): string {
  return t && t.id ? '#' + t.id : navTarget;
}

// ------------------------------------------------------------------ triggers

interface Trigger { event: string; every?: number; once?: boolean; changed?: boolean; delay?: number; throttle?: number; from?: string }

export function parseTriggers(spec: string): Trigger[] {
  const out: Trigger[] = [];
  for (const part of spec.split(',')) {
    const toks = part.trim().split(/\s+/).filter(Boolean);
    if (!toks.length) continue;
    const t: Trigger = { event: toks[0] };
    let i = 1;
    if (toks[0] === 'every') { t.every = parseTime(toks[1]); i = 2; }
    for (; i < toks.length; i++) {
      const k = toks[i];
      if (k === 'once') t.once = true;
      else if (k === 'changed') t.changed = true;
      else if (k.startsWith('delay:')) t.delay = parseTime(k.slice(6));
      else if (k.startsWith('throttle:')) t.throttle = parseTime(k.slice(9));
      else if (k.startsWith('from:')) {
        let from = k.slice(5);
        if ((from === 'closest' || from === 'find' || from === 'next' || from === 'previous') && toks[i + 1]) from += ' ' + toks[++i];
        t.from = from;
      }
    }
    out.push(t);
  }
  return out;
}

function defaultTrigger(el: Element): string {
  const tag = el.tagName;
  if (tag === 'FORM') return 'submit';
  if (tag === 'INPUT' || tag === 'SELECT' || tag === 'TEXTAREA') return 'change';
  return 'click';
}

function verbOf(el: Element): [string, string] | null {
  for (const v of VERBS) {
    const url = el.getAttribute('sx-' + v);
    if (url !== null) return [v, url];
  }
  return null;
}

function valueOf(el: Element): string {
  return (el as HTMLInputElement).value ?? el.textContent ?? '';
}

function setupElement(el: Element) {
  const vu = verbOf(el);
  if (!vu) return;
  const [verb, url] = vu;
  const teardowns: (() => void)[] = [];
  const fire = (ev?: Event) => {
    const submitter = (ev as SubmitEvent | undefined)?.submitter ?? null;
    request({ el, verb, url, submitter }).catch(e => console.error('sx:', e));
  };
  for (const t of parseTriggers(el.getAttribute('sx-trigger') || defaultTrigger(el))) {
    if (t.every) {
      const id = W.setInterval(() => { if (!el.isConnected) W.clearInterval(id); else fire(); }, t.every);
      teardowns.push(() => W.clearInterval(id));
      continue;
    }
    if (t.event === 'load') { queueMicrotask(() => fire()); continue; }
    if (t.event === 'revealed' || t.event === 'intersect') {
      if ('IntersectionObserver' in W) {
        const io = new W.IntersectionObserver(entries => {
          if (entries.some(e => e.isIntersecting)) { io.disconnect(); fire(); }
        });
        io.observe(el);
        teardowns.push(() => io.disconnect());
      } else queueMicrotask(() => fire());
      continue;
    }
    let sources: EventTarget[] = [el];
    if (t.from) sources = t.from === 'document' ? [D] : t.from === 'window' ? [W] : resolveTargets(el, t.from);
    let last: string | undefined = t.changed ? valueOf(el) : undefined;
    let timer: any = null, throttled = false, done = false;
    const listener = (ev: Event) => {
      if (done) return;
      if (ev.type === 'submit' || (ev.type === 'click' && (el.tagName === 'A' || (el.tagName === 'BUTTON' && el.closest('form') && (el as HTMLButtonElement).type !== 'button')) || (el.tagName === 'INPUT' && (el as HTMLInputElement).type === 'submit'))) ev.preventDefault();
      if (t.changed) {
        const v = valueOf(ev.currentTarget === el || !(ev.target as Element)?.closest ? el : (ev.target as Element));
        if (v === last) return;
        last = v;
      }
      if (t.once) done = true;
      if (t.throttle) {
        if (throttled) return;
        throttled = true;
        W.setTimeout(() => { throttled = false; }, t.throttle);
        fire(ev);
      } else if (t.delay) {
        W.clearTimeout(timer);
        timer = W.setTimeout(() => fire(ev), t.delay);
      } else fire(ev);
    };
    for (const s of sources) {
      s.addEventListener(t.event, listener);
      teardowns.push(() => s.removeEventListener(t.event, listener));
    }
  }
  processed.set(el, () => teardowns.forEach(f => f()));
}

const SELECTOR = VERBS.map(v => `[sx-${v}]`).join(',');

/** Wires sx-* attributes at or under `root` (idempotent). */
export function processNode(root: Element | Document) {
  const els: Element[] = [];
  if ((root as Element).matches?.(SELECTOR)) els.push(root as Element);
  els.push(...root.querySelectorAll(SELECTOR));
  for (const el of els) if (!processed.has(el)) setupElement(el);
}

// ------------------------------------------------------------------ boost (client navigation)

function boostRegion(el: Element): Element | null {
  const b = el.closest('[sx-boost]');
  return b && b.getAttribute('sx-boost') !== 'false' ? b : null;
}

function navTargetFor(region: Element): Element | null {
  const t = region.getAttribute('sx-target');
  if (t) return resolveTargets(region, t)[0] || null;
  return D.querySelector(navTarget) || D.body;
}

function onClick(e: MouseEvent) {
  if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const a = (e.target as Element)?.closest?.('a[href]') as HTMLAnchorElement | null;
  if (!a || verbOf(a)) return;
  const region = boostRegion(a);
  if (!region || a.hasAttribute('download') || (a.target && a.target !== '_self')) return;
  const href = a.getAttribute('href')!;
  if (href.startsWith('#') || !sameOrigin(a.href)) return;
  const url = new URL(a.href, W.location.href);
  if (url.pathname === W.location.pathname && url.search === W.location.search && url.hash) return;
  e.preventDefault();
  navigate(a.href, a, region);
}

function onSubmit(e: SubmitEvent) {
  if (e.defaultPrevented) return;
  const form = e.target as HTMLFormElement;
  if (!form || form.tagName !== 'FORM' || verbOf(form)) return;
  const region = boostRegion(form);
  if (!region) return;
  const action = form.getAttribute('action') || W.location.href;
  if (!sameOrigin(new URL(action, W.location.href).href)) return;
  e.preventDefault();
  const verb = (form.getAttribute('method') || 'get').toLowerCase();
  const target = navTargetFor(region);
  request({
    el: form, verb, url: action, target, boost: true, submitter: e.submitter,
    swap: parseSwap(region.getAttribute('sx-swap')),
    push: verb === 'get' ? 'true' : 'redirect',
  }).catch(err => console.error('sx:', err));
}

/** Client navigation: fetch `url` as SX wire and swap the main region. */
export function navigate(url: string, source?: Element, region?: Element | null): Promise<void> {
  const r = region ?? D.querySelector('[sx-boost]') ?? D.body;
  const target = navTargetFor(r);
  return request({
    el: source || r, verb: 'get', url, target, boost: true, params: [],
    swap: parseSwap(r.getAttribute('sx-swap')), push: url,
  });
}

function onPopState(e: PopStateEvent) {
  const st = e.state as HistState | null;
  if (!st || !st.sx) return;
  const target = D.querySelector(st.target) || D.querySelector(navTarget) || D.body;
  request({
    el: target, verb: 'get', url: W.location.href, target, restore: true, boost: true, params: [],
    swap: parseSwap('innerHTML'), scroll: st.scroll || 0,
  }).catch(err => console.error('sx:', err));
}

// ------------------------------------------------------------------ start

/** Starts the runtime on a window: wires the page, hydrates islands, listens for navigation. */
export function start(win: Window & typeof globalThis = globalThis as any) {
  W = win;
  D = win.document;
  const main = D.querySelector('[sx-boost][sx-target]');
  if (main) navTarget = main.getAttribute('sx-target')!;
  if ('scrollRestoration' in W.history) W.history.scrollRestoration = 'manual';
  W.history.replaceState({ ...(W.history.state || {}), sx: true, target: navTarget, scroll: W.scrollY || 0 }, '');
  const t0 = W.performance?.now() ?? 0;
  processNode(D);
  processSx(D, evalString);
  stats.startMs = (W.performance?.now() ?? 0) - t0;
  D.addEventListener('click', onClick as EventListener);
  D.addEventListener('submit', onSubmit as EventListener);
  W.addEventListener('popstate', onPopState as EventListener);
  let t: any = null;
  W.addEventListener('scroll', () => { W.clearTimeout(t); t = W.setTimeout(saveScroll, 150); });
  // islands removed by anything other than our swaps (user code, morphs) are disposed too
  new W.MutationObserver(recs => {
    for (const r of recs) for (const n of r.removedNodes) if (!n.isConnected) {
      disposeIslands(n);
      if (n.nodeType === 1) teardown(n as Element);
    }
  }).observe(D.documentElement, { childList: true, subtree: true });
}

function teardown(root: Element) {
  const els = [root, ...root.querySelectorAll(SELECTOR)];
  for (const el of els) { const f = processed.get(el); if (f) { f(); processed.delete(el); } }
}

export { List, Sym, toArray };
