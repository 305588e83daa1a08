// The hypermedia engine: sx-* attributes, headers, swaps, out-of-band
// swaps, triggers, errors, history and client navigation.
import test from 'node:test';
import assert from 'node:assert/strict';
import { sx, page, settle, click } from './helpers.mjs';

test('sx-get swaps SX wire into the target and sends the SX headers', async () => {
  const { win, doc, calls } = page('<div id="out">old</div><button id="b" sx-get="/hello" sx-target="#out">go</button>', {
    routes: { 'GET /hello': '(p :class "x" "hi <there>")' },
  });
  click(win, doc.getElementById('b'));
  await settle();
  assert.equal(doc.getElementById('out').innerHTML, '<p class="x">hi &lt;there&gt;</p>');
  const h = calls[0].headers;
  assert.equal(h['SX-Request'], 'true');
  assert.equal(h['SX-Target'], 'out');
  assert.equal(h['SX-Current-URL'], 'http://localhost/page');
});

test('HTML responses work too', async () => {
  const { win, doc } = page('<div id="out"></div><button id="b" sx-get="/h" sx-target="#out">go</button>', {
    routes: { 'GET /h': { body: '<b>bold</b>', type: 'text/html' } },
  });
  click(win, doc.getElementById('b'));
  await settle();
  assert.equal(doc.getElementById('out').innerHTML, '<b>bold</b>');
});

test('sx-target: this, closest, find; default target is the element', async () => {
  const { win, doc } = page(`
    <div class="card"><span id="a" sx-get="/x" sx-target="closest .card">a</span></div>
    <div id="f" sx-get="/x" sx-target="find .inner"><i class="inner"></i></div>
    <em id="t" sx-get="/x">t</em>`, { routes: { 'GET /x': '"X"' } });
  click(win, doc.getElementById('a'));
  await settle();
  assert.equal(doc.querySelector('.card').textContent, 'X');
  click(win, doc.getElementById('f'));
  await settle();
  assert.equal(doc.querySelector('.inner').textContent, 'X');
  click(win, doc.getElementById('t'));
  await settle();
  assert.equal(doc.getElementById('t').textContent, 'X');
});

test('sx-swap styles', async () => {
  const styles = ['innerHTML', 'outerHTML', 'beforebegin', 'afterbegin', 'beforeend', 'afterend', 'delete', 'none', 'morph'];
  const expected = {
    innerHTML: '<div id="t"><b>n</b></div>',
    outerHTML: '<b>n</b>',
    beforebegin: '<b>n</b><div id="t"><i>o</i></div>',
    afterbegin: '<div id="t"><b>n</b><i>o</i></div>',
    beforeend: '<div id="t"><i>o</i><b>n</b></div>',
    afterend: '<div id="t"><i>o</i></div><b>n</b>',
    delete: '',
    none: '<div id="t"><i>o</i></div>',
    morph: '<div id="t"><b>n</b></div>',
  };
  for (const s of styles) {
    const { win, doc } = page(`<section><div id="t"><i>o</i></div></section><button id="b" sx-get="/n" sx-target="#t" sx-swap="${s}">b</button>`, {
      routes: { 'GET /n': '(b "n")' },
    });
    click(win, doc.getElementById('b'));
    await settle();
    assert.equal(doc.querySelector('section').innerHTML, expected[s], s);
  }
});

test('morph keeps the focused input and its value', async () => {
  const { win, doc } = page('<form id="f"><input id="q" name="q"><span id="n">0</span></form><button id="b" sx-get="/m" sx-target="#f" sx-swap="morph">b</button>', {
    routes: { 'GET /m': '(<> (input :id "q" :name "q") (span :id "n" "1"))' },
  });
  const q = doc.getElementById('q');
  q.value = 'typed';
  q.focus();
  click(win, doc.getElementById('b'));
  await settle();
  assert.equal(doc.getElementById('q'), q, 'same input node');
  assert.equal(q.value, 'typed');
  assert.equal(doc.getElementById('n').textContent, '1');
});

test('out-of-band swaps update other elements by id', async () => {
  const { win, doc } = page('<div id="main">m</div><span id="count">0</span><ul id="log"><li>a</li></ul><button id="b" sx-get="/o" sx-target="#main">b</button>', {
    routes: { 'GET /o': '(<> (p "main") (span :id "count" :sx-swap-oob "true" "5") (li :id "log" :sx-swap-oob "beforeend" (li "b")))' },
  });
  click(win, doc.getElementById('b'));
  await settle();
  assert.equal(doc.getElementById('main').innerHTML, '<p>main</p>');
  assert.equal(doc.getElementById('count').textContent, '5');
  assert.equal(doc.getElementById('log').innerHTML, '<li>a</li><li>b</li>');
});

test('POST sends the form, the CSRF header and sx-vals; sx-include adds fields', async () => {
  const { win, doc, calls } = page(`
    <input id="extra" name="extra" value="e">
    <form id="f" sx-post="/save" sx-target="#r" sx-vals='{:kind "note"}' sx-include="#extra">
      <input name="_csrf" type="hidden" value="tok"><input name="title" value="T &amp; U"><button id="s" name="go" value="1">save</button>
    </form><div id="r"></div>`, {
    head: '<meta name="csrf-token" content="tok">',
    routes: { 'POST /save': '"saved"' },
  });
  doc.getElementById('f').dispatchEvent(new win.SubmitEvent('submit', { bubbles: true, cancelable: true, submitter: doc.getElementById('s') }));
  await settle();
  assert.equal(doc.getElementById('r').textContent, 'saved');
  const c = calls[0];
  assert.equal(c.method, 'POST');
  assert.equal(c.headers['X-CSRF-Token'], 'tok');
  const body = new URLSearchParams(c.body);
  assert.equal(body.get('title'), 'T & U');
  assert.equal(body.get('_csrf'), 'tok');
  assert.equal(body.get('kind'), 'note');
  assert.equal(body.get('extra'), 'e');
  assert.equal(body.get('go'), '1');
});

test('GET parameters go in the query string; delete and put verbs', async () => {
  const { win, doc, calls } = page(`
    <input id="q" name="q" sx-get="/search" sx-target="#r" sx-trigger="keyup changed delay:20ms">
    <button id="d" sx-delete="/item/1" sx-target="#r">x</button>
    <button id="p" sx-put="/item/1" sx-vals='{"a": 1}' sx-target="#r">x</button><div id="r"></div>`, {
    routes: { 'GET /search': c => `"results for ${new URL('http://x' + c.url).searchParams.get('q')}"`, 'DELETE /item/1': '"deleted"', 'PUT /item/1': '"put"' },
  });
  const q = doc.getElementById('q');
  for (const ch of ['a', 'ab', 'abc']) { q.value = ch; q.dispatchEvent(new win.KeyboardEvent('keyup', { bubbles: true })); }
  q.dispatchEvent(new win.KeyboardEvent('keyup', { bubbles: true })); // unchanged value
  await settle(60);
  assert.equal(calls.length, 1, 'debounced to one request');
  assert.equal(calls[0].url, '/search?q=abc');
  assert.equal(doc.getElementById('r').textContent, 'results for abc');
  click(win, doc.getElementById('d'));
  await settle();
  assert.equal(calls[1].method, 'DELETE');
  click(win, doc.getElementById('p'));
  await settle();
  assert.equal(calls[2].method, 'PUT');
  assert.equal(new URLSearchParams(calls[2].body).get('a'), '1');
});

test('triggers: once, load, throttle, from', async () => {
  let n = 0;
  const { win, doc, calls } = page(`
    <div id="o" sx-get="/c" sx-trigger="click once" sx-swap="none">o</div>
    <div id="l" sx-get="/l" sx-trigger="load">l</div>
    <div id="t" sx-get="/c" sx-trigger="click throttle:50ms" sx-swap="none">t</div>
    <div id="f" sx-get="/c" sx-trigger="ping from:body" sx-swap="none">f</div>`, {
    routes: { 'GET /c': () => `"${++n}"`, 'GET /l': '"loaded"' },
  });
  await settle();
  assert.equal(doc.getElementById('l').textContent, 'loaded');
  const base = calls.length;
  click(win, doc.getElementById('o')); click(win, doc.getElementById('o'));
  await settle();
  assert.equal(calls.length, base + 1, 'once');
  click(win, doc.getElementById('t')); click(win, doc.getElementById('t')); click(win, doc.getElementById('t'));
  await settle();
  assert.equal(calls.length, base + 2, 'throttled');
  doc.body.dispatchEvent(new win.CustomEvent('ping'));
  await settle();
  assert.equal(calls.length, base + 3, 'from:body');
});

test('every Ns polls while the element is in the page', async () => {
  const { doc, calls } = page('<div id="p" sx-get="/poll" sx-trigger="every 0.02s">0</div>', { routes: { 'GET /poll': '"tick"' } });
  await settle(70);
  const n = calls.length;
  assert.ok(n >= 2, `polled ${n} times`);
  doc.getElementById('p').remove();
  await settle(60);
  assert.ok(calls.length <= n + 1, 'stops after removal');
});

test('errors swap only where the page asks (sx-target-error)', async () => {
  const { win, doc } = page(`
    <div id="out">keep</div><div id="err"></div>
    <button id="a" sx-get="/bad" sx-target="#out">a</button>
    <button id="b" sx-get="/bad" sx-target="#out" sx-target-error="#err">b</button>`, {
    routes: { 'GET /bad': { status: 422, body: '(p "invalid")' } },
  });
  let errors = 0;
  doc.addEventListener('sx:responseError', () => errors++);
  click(win, doc.getElementById('a'));
  await settle();
  assert.equal(doc.getElementById('out').textContent, 'keep');
  click(win, doc.getElementById('b'));
  await settle();
  assert.equal(doc.getElementById('out').textContent, 'keep');
  assert.equal(doc.getElementById('err').textContent, 'invalid');
  assert.equal(errors, 2);
});

test('response headers: SX-Retarget, SX-Reswap, SX-Trigger, SX-Push-Url', async () => {
  const { win, doc } = page('<div id="a">a</div><div id="b"><i>b</i></div><button id="go" sx-get="/r" sx-target="#a">go</button>', {
    routes: { 'GET /r': { body: '(p "new")', headers: { 'SX-Retarget': '#b', 'SX-Reswap': 'beforeend', 'SX-Trigger': '{"saved": {"id": 7}}', 'SX-Push-Url': '/pushed' } } },
  });
  let detail = null;
  doc.addEventListener('saved', e => { detail = e.detail; });
  click(win, doc.getElementById('go'));
  await settle();
  assert.equal(doc.getElementById('a').textContent, 'a');
  assert.equal(doc.getElementById('b').innerHTML, '<i>b</i><p>new</p>');
  assert.deepEqual(detail, { id: 7 });
  assert.equal(win.location.pathname, '/pushed');
});

test('sx-confirm cancels when declined; sx-indicator gets sx-request during the request', async () => {
  let release;
  const { win, doc, calls } = page('<span id="spin" class="sx-indicator"></span><button id="c" sx-get="/x" sx-confirm="Sure?">c</button><button id="i" sx-get="/slow" sx-indicator="#spin" sx-swap="none">i</button>', {
    routes: { 'GET /x': '"x"', 'GET /slow': '"s"' },
  });
  win.confirm = () => false;
  click(win, doc.getElementById('c'));
  await settle();
  assert.equal(calls.length, 0);
  const f = win.fetch;
  win.fetch = (...a) => new Promise(r => { release = () => r(f(...a)); });
  click(win, doc.getElementById('i'));
  await settle();
  assert.ok(doc.getElementById('spin').classList.contains('sx-request'));
  release();
  await settle();
  assert.ok(!doc.getElementById('spin').classList.contains('sx-request'));
});

test('sx-push-url pushes the request URL', async () => {
  const { win, doc } = page('<div id="main"></div><a id="l" sx-get="/contacts?page=2" sx-target="#main" sx-push-url="true">next</a>', {
    routes: { 'GET /contacts': '(p "page 2")' },
  });
  click(win, doc.getElementById('l'));
  await settle();
  assert.equal(win.location.pathname + win.location.search, '/contacts?page=2');
  assert.equal(win.history.state.sx, true);
});

test('boosted links fetch SX wire, swap #main, update URL and title (element or header)', async () => {
  const { win, doc, calls } = page(`<nav sx-boost><a id="a" href="/about">about</a><a id="b" href="/blog">blog</a><a id="ext" href="https://elsewhere.example/">x</a></nav><main id="main"><p>home</p></main>`, {
    routes: {
      'GET /about': '(<> (title "About us") (h1 "About"))',
      'GET /blog': { body: '(h1 "Blog")', headers: { 'SX-Title': 'The%20Blog%20%26%20more' } },
      'GET /page': '(p "home again")',
    },
  });
  click(win, doc.getElementById('a'));
  await settle();
  assert.equal(doc.getElementById('main').innerHTML, '<h1>About</h1>');
  assert.equal(doc.title, 'About us');
  assert.equal(win.location.pathname, '/about');
  assert.equal(calls[0].headers['SX-Target'], 'main');
  assert.equal(calls[0].headers['SX-Boosted'], 'true');
  click(win, doc.getElementById('b'));
  await settle();
  assert.equal(doc.title, 'The Blog & more');
  assert.equal(win.location.pathname, '/blog');
  const n = calls.length;
  const ev = new win.MouseEvent('click', { bubbles: true, cancelable: true, button: 0 });
  doc.getElementById('ext').dispatchEvent(ev);
  assert.equal(calls.length, n, 'external links are not boosted');
});

test('back/forward restores by refetching the URL', async () => {
  const { win, doc, calls } = page(`<nav sx-boost><a id="a" href="/about">about</a></nav><main id="main"><p>home</p></main>`, {
    routes: { 'GET /about': '(h1 "About")', 'GET /page': '(p "home (refetched)")' },
  });
  click(win, doc.getElementById('a'));
  await settle();
  win.history.back();
  await settle(20);
  assert.equal(win.location.pathname, '/page');
  assert.equal(doc.getElementById('main').textContent, 'home (refetched)');
  const last = calls[calls.length - 1];
  assert.equal(last.headers['SX-History-Restore'], 'true');
});

test('boosted GET forms submit to the URL with their fields', async () => {
  const { doc, calls, win } = page(`<div sx-boost><form id="f" action="/search"><input name="q" value="cats"></form></div><main id="main"></main>`, {
    routes: { 'GET /search': '(p "found")' },
  });
  doc.getElementById('f').dispatchEvent(new win.SubmitEvent('submit', { bubbles: true, cancelable: true }));
  await settle();
  assert.equal(calls[0].url, '/search?q=cats');
  assert.equal(doc.getElementById('main').textContent, 'found');
  assert.equal(win.location.search, '?q=cats');
});

test('content swapped in is processed for sx-* attributes', async () => {
  const { win, doc } = page('<div id="main"></div><button id="b" sx-get="/one" sx-target="#main">b</button>', {
    routes: { 'GET /one': '(button :id "two" :sx-get "/two" :sx-target "#main" "two")', 'GET /two': '(p "second")' },
  });
  click(win, doc.getElementById('b'));
  await settle();
  click(win, doc.getElementById('two'));
  await settle();
  assert.equal(doc.getElementById('main').textContent, 'second');
});

test('sx-select, sx-headers, sx-disabled-elt', async () => {
  let release;
  const { win, doc, calls } = page('<div id="r"></div><button id="b" sx-get="/page" sx-target="#r" sx-select="#keep" sx-headers=\'{:X-Thing "1"}\' sx-disabled-elt="this">b</button>', {
    routes: { 'GET /page': '(<> (h1 "title") (div :id "keep" "kept") (p "dropped"))' },
  });
  const f = win.fetch;
  win.fetch = (...a) => new Promise(r => { release = () => r(f(...a)); });
  click(win, doc.getElementById('b'));
  await settle();
  assert.equal(doc.getElementById('b').disabled, true);
  release();
  await settle();
  assert.equal(doc.getElementById('b').disabled, false);
  assert.equal(doc.getElementById('r').innerHTML, '<div id="keep">kept</div>');
  assert.equal(calls[0].headers['X-Thing'], '1');
});

test('requests to another origin are refused', async () => {
  const { win, doc, calls } = page('<button id="b" sx-get="https://evil.example/x">b</button>');
  let err = 0;
  doc.addEventListener('sx:sendError', () => err++);
  const orig = console.error; console.error = () => {};
  click(win, doc.getElementById('b'));
  await settle();
  console.error = orig;
  assert.equal(calls.length, 0);
  assert.equal(err, 1);
});

test('an input inside a posted form is sent once', async () => {
  const { win, doc, calls } = page('<form><input id="i" name="n" value="v" sx-post="/p" sx-trigger="keyup" sx-swap="none"><input name="m" value="w"></form>', {
    routes: { 'POST /p': '""' },
  });
  doc.getElementById('i').dispatchEvent(new win.KeyboardEvent('keyup', { bubbles: true }));
  await settle();
  assert.equal(calls[0].body, 'n=v&m=w');
});

test('a newer request from the same element wins over a slower older one', async () => {
  const resolvers = [];
  const { win, doc } = page('<input id="q" name="q" sx-get="/s" sx-trigger="keyup" sx-target="#r"><div id="r"></div>', {
    routes: { 'GET /s': c => `"${new URL('http://x' + c.url).searchParams.get('q')}"` },
  });
  const f = win.fetch;
  win.fetch = (u, init) => new Promise((r, j) => {
    resolvers.push(() => r(f(u, init)));
    init.signal?.addEventListener('abort', () => j(Object.assign(new Error('aborted'), { name: 'AbortError' })));
  });
  const q = doc.getElementById('q');
  q.value = 'old'; q.dispatchEvent(new win.KeyboardEvent('keyup', { bubbles: true }));
  q.value = 'new'; q.dispatchEvent(new win.KeyboardEvent('keyup', { bubbles: true }));
  resolvers[1]();
  await settle();
  resolvers[0]();
  await settle();
  assert.equal(doc.getElementById('r').textContent, 'new');
});
