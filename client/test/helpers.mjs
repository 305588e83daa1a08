// Shared test helpers: a happy-dom window with the runtime started, and a
// scripted fetch.
import { Window } from 'happy-dom';
import * as sx from '../dist/sx.test.mjs';

export { sx };

/** A window at `url` whose body is `html`; `routes` maps "METHOD path" to a response spec or function. */
export function page(html, { url = 'http://localhost/page', routes = {}, head = '' } = {}) {
  const win = new Window({ url, settings: { disableJavaScriptEvaluation: true, navigation: { disableMainFrameNavigation: true } } });
  const doc = win.document;
  doc.head.innerHTML = head;
  doc.body.innerHTML = html;
  const calls = [];
  win.fetch = async (u, init = {}) => {
    const full = new URL(u, win.location.href);
    const method = (init.method || 'GET').toUpperCase();
    const call = { url: full.pathname + full.search, method, headers: init.headers || {}, body: init.body };
    calls.push(call);
    let spec = routes[`${method} ${full.pathname}`] ?? routes[`${method} ${full.pathname}${full.search}`];
    if (typeof spec === 'function') spec = spec(call);
    if (!spec) spec = { status: 404, body: 'not found', type: 'text/plain' };
    if (typeof spec === 'string') spec = { body: spec };
    const headers = { 'Content-Type': spec.type || 'text/sx; charset=utf-8', ...(spec.headers || {}) };
    return new Response(spec.body ?? '', { status: spec.status || 200, headers });
  };
  win.confirm = () => true;
  // idiomorph reads a few DOM globals
  for (const k of ['Document', 'Node', 'Element', 'HTMLElement', 'DocumentFragment', 'HTMLTemplateElement', 'document']) globalThis[k] = win[k];
  win.scrollTo = () => {};
  sx.start(win);
  return { win, doc, calls };
}

/** Waits for pending fetches, microtasks and timers up to `ms`. */
export const settle = (ms = 0) => new Promise(r => setTimeout(r, ms + 5));

export function click(win, el) {
  el.dispatchEvent(new win.MouseEvent('click', { bubbles: true, cancelable: true, button: 0 }));
}
