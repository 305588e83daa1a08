// Wire → DOM rendering (escaping, raw!, URLs, SVG) and islands: hydration
// over server HTML without re-rendering, islands in swapped content,
// disposal of removed islands.
import test from 'node:test';
import assert from 'node:assert/strict';
import { sx, page, settle, click } from './helpers.mjs';

const wire = (doc, text, trusted = true) => {
  const div = doc.createElement('div');
  div.appendChild(sx.renderFragment(sx.fromWire(sx.readOne(text), trusted), doc, trusted));
  return div;
};

test('wire text and attributes are escaped by construction', () => {
  const { doc } = page('');
  const d = wire(doc, '(p :title "\\" onmouseover=\\"x" "a<b & </p><script>x</script>")');
  assert.equal(d.innerHTML, '<p title="&quot; onmouseover=&quot;x">a&lt;b &amp; &lt;/p&gt;&lt;script&gt;x&lt;/script&gt;</p>');
  assert.equal(d.querySelectorAll('script').length, 0);
});

test('wire elements: attributes, numbers, booleans, fragments, nesting', () => {
  const { doc } = page('');
  const d = wire(doc, '(<> (input :type "checkbox" :checked true) (td :colspan 2 1.5) (ul (li "a") (li "b")))');
  assert.equal(d.innerHTML, '<input type="checkbox" checked=""><td colspan="2">1.5</td><ul><li>a</li><li>b</li></ul>');
});

test('raw! is honoured only in trusted (same-origin) responses', () => {
  const { doc } = page('');
  assert.equal(wire(doc, '(div (raw! "<b>bold</b>"))', true).innerHTML, '<div><b>bold</b></div>');
  assert.equal(wire(doc, '(div (raw! "<b>bold</b>"))', false).innerHTML, '<div>&lt;b&gt;bold&lt;/b&gt;</div>');
});

test('script URLs are neutralised like the server does', () => {
  const { doc } = page('');
  const d = wire(doc, '(<> (a :href " JaVa\\tScRiPt:alert(1)" "x") (img :src "data:image/png;base64,AA") (iframe :src "data:text/html,x"))');
  assert.equal(d.querySelector('a').getAttribute('href'), 'about:invalid#sx-unsafe-url');
  assert.equal(d.querySelector('img').getAttribute('src'), 'data:image/png;base64,AA');
  assert.equal(d.querySelector('iframe').getAttribute('src'), 'about:invalid#sx-unsafe-url');
});

test('svg elements get the SVG namespace', () => {
  const { doc } = page('');
  const d = wire(doc, '(svg :viewBox "0 0 10 10" (circle :r 5))');
  assert.equal(d.querySelector('circle').namespaceURI, 'http://www.w3.org/2000/svg');
});

const COUNTER = `<script type="text/sx">
  (defisland ~counter (&key start)
    (let ((n (signal start)))
      (div :class "counter"
        (button :class "dec" :on-click (fn (e) (swap! n dec)) "-")
        (span :class (if (> (deref n) 9) "big" "small") "Count: " (deref n))
        (button :class "inc" :on-click (fn (e) (swap! n inc)) "+"))))
</script>`;
const counterHtml = (start, id = 'c1') =>
  `<sx-island id="${id}" data-sx-island="~counter" data-sx-props="{:start ${start}}"><div class="counter"><button class="dec">-</button><span class="small">Count: ${start}</span><button class="inc">+</button></div></sx-island>`;

test('an island hydrates over the server HTML without re-rendering it', () => {
  // the server HTML is created before the runtime starts; keep references to its nodes
  const before = sx.hydrationMismatches;
  const { win, doc } = page(COUNTER + counterHtml(3));
  const island = doc.querySelector('sx-island');
  const span = island.querySelector('span');
  assert.ok(sx.isHydrated(island));
  assert.equal(sx.hydrationMismatches, before);
  click(win, island.querySelector('.inc'));
  assert.equal(island.querySelector('span'), span, 'the same span node');
  assert.equal(span.textContent, 'Count: 4');
  for (let i = 0; i < 6; i++) click(win, island.querySelector('.inc'));
  assert.equal(span.textContent, 'Count: 10');
  assert.equal(span.getAttribute('class'), 'big', 'reactive attribute');
  click(win, island.querySelector('.dec'));
  assert.equal(span.textContent, 'Count: 9');
  assert.equal(span.getAttribute('class'), 'small');
});

test('mismatched server HTML is rendered afresh on the client', () => {
  const { doc } = page(COUNTER + '<sx-island data-sx-island="~counter" data-sx-props="{:start 1}"><p>stale</p></sx-island>');
  const island = doc.querySelector('sx-island');
  assert.equal(island.querySelector('span').textContent, 'Count: 1');
  assert.equal(island.querySelector('p'), null);
});

test('render-html leaves out function-valued attributes, as the server does (spec/tests/render.sx)', () => {
  assert.equal(sx.evalString('(render-html (button :type "button" :on-click (fn (e) nil) "+"))'), '<button type="button">+</button>');
});

test('a reactive hole whose hydration failed is not left subscribed (mismatch, then its signal changes)', () => {
  // Found by lib/demo's shared-signal page: a top-level signal already
  // changed in this page, so the server's text no longer matches. The
  // half-hydrated hole used to stay subscribed and crash on the next write.
  const { doc } = page(`<script type="text/sx">(define shared-n (signal 2))
    (defisland ~shows-n () (p :class "n" "n=" (deref shared-n)))</script>
    <sx-island data-sx-island="~shows-n" data-sx-props="{}"><p class="n">n=0</p></sx-island>`);
  const island = doc.querySelector('sx-island');
  assert.equal(island.textContent, 'n=2', 'rendered afresh with the signal\'s value');
  const errors = [];
  const orig = console.error;
  console.error = (...a) => errors.push(a.join(' '));
  try { sx.evalString('(reset! shared-n 3)'); } finally { console.error = orig; }
  assert.deepEqual(errors, []);
  assert.equal(island.textContent, 'n=3');
  assert.equal(island.querySelectorAll('p').length, 1);
});

test('islands arriving in swapped content hydrate, removed ones are disposed', async () => {
  const { win, doc } = page(COUNTER + '<div id="main"></div><button id="load" sx-get="/part" sx-target="#main">load</button><button id="clear" sx-get="/empty" sx-target="#main">clear</button>', {
    routes: {
      'GET /part': `(<> (script :type "text/sx" "(define ticks (signal 0)) (defisland ~ticker () (let ((mine (signal 0))) (effect (fn () (deref ticks) (swap! mine inc) (fn () (set! cleanups (inc cleanups))))) (p \\"seen \\" (deref mine))))") ${sx.serialize(sx.readOne('(sx-island :data-sx-island "~ticker" :data-sx-props "{}" (p "seen 1"))'))})`,
      'GET /empty': '(p "gone")',
    },
  });
  sx.evalString('(define cleanups 0)');
  click(win, doc.getElementById('load'));
  await settle();
  const island = doc.querySelector('#main sx-island');
  assert.ok(island && sx.isHydrated(island), 'hydrated after the swap');
  assert.equal(island.textContent, 'seen 1');
  sx.evalString('(reset! ticks 1)');
  assert.equal(island.textContent, 'seen 2');
  assert.equal(sx.evalString('cleanups'), 1);
  click(win, doc.getElementById('clear'));
  await settle();
  assert.equal(doc.querySelector('#main').textContent, 'gone');
  assert.equal(sx.evalString('cleanups'), 2, 'the effect was disposed with its island');
  sx.evalString('(reset! ticks 2)');
  assert.equal(island.textContent, 'seen 2', 'a removed island no longer updates');
  assert.equal(sx.evalString('cleanups'), 2);
});

test('two islands share a signal defined at top level', () => {
  const html = `<script type="text/sx">
    (define shared (signal 0))
    (defisland ~bump () (button :on-click (fn (e) (swap! shared inc)) "bump"))
    (defisland ~show () (output (deref shared)))
  </script>
  <sx-island data-sx-island="~bump" data-sx-props="{}"><button>bump</button></sx-island>
  <sx-island data-sx-island="~show" data-sx-props="{}"><output>0</output></sx-island>`;
  const { win, doc } = page(html);
  click(win, doc.querySelector('button'));
  click(win, doc.querySelector('button'));
  assert.equal(doc.querySelector('output').textContent, '2');
});

test('reactive regions: conditional and list children re-render; text updates in place', () => {
  const html = `<script type="text/sx">
    (defisland ~todo (&key items)
      (let ((xs (signal items)) (open (signal true)))
        (div
          (button :class "t" :on-click (fn (e) (swap! open not)) "toggle")
          (button :class "a" :on-click (fn (e) (swap! xs (fn (l) (append l (list (str "item " (len l))))))) "add")
          (when (deref open) (ul (map (fn (x) (li x)) (deref xs))))
          (p (len (deref xs)) " items"))))
  </script>
  <sx-island data-sx-island="~todo" data-sx-props='{:items ("a")}'><div><button class="t">toggle</button><button class="a">add</button><ul><li>a</li></ul><p>1 items</p></div></sx-island>`;
  const before = sx.hydrationMismatches;
  const { win, doc } = page(html);
  assert.equal(sx.hydrationMismatches, before, 'hydrated without a mismatch');
  const p = doc.querySelector('p');
  click(win, doc.querySelector('.a'));
  assert.deepEqual([...doc.querySelectorAll('li')].map(l => l.textContent), ['a', 'item 1']);
  assert.equal(p.textContent, '2 items');
  click(win, doc.querySelector('.t'));
  assert.equal(doc.querySelector('ul'), null);
  click(win, doc.querySelector('.t'));
  assert.equal(doc.querySelectorAll('li').length, 2);
});

test('island code cannot produce raw HTML', () => {
  const html = `<script type="text/sx">(defisland ~evil () (div (str "<b>" "x" "</b>")))</script>
  <sx-island data-sx-island="~evil" data-sx-props="{}"></sx-island>`;
  const { doc } = page(html);
  assert.equal(doc.querySelector('sx-island b'), null);
  assert.equal(doc.querySelector('sx-island div').textContent, '<b>x</b>');
  assert.throws(() => sx.evalString('(raw-html-does-not-exist "x")'));
});

test('island handlers read events: inline validation', () => {
  const html = `<script type="text/sx">
    (defisland ~email ()
      (let ((v (signal "")))
        (label (input :name "email" :on-input (fn (e) (reset! v (event-value e))))
               (span :class "msg" (cond (empty? (deref v)) "" (contains? (deref v) "@") "ok" :else "needs an @")))))
  </script><sx-island data-sx-island="~email" data-sx-props="{}"><label><input name="email"><span class="msg"></span></label></sx-island>`;
  const { win, doc } = page(html);
  const input = doc.querySelector('input');
  input.value = 'ann';
  input.dispatchEvent(new win.Event('input', { bubbles: true }));
  assert.equal(doc.querySelector('.msg').textContent, 'needs an @');
  input.value = 'ann@example.org';
  input.dispatchEvent(new win.Event('input', { bubbles: true }));
  assert.equal(doc.querySelector('.msg').textContent, 'ok');
  assert.equal(sx.serialize(sx.evalString('(type-of 1)')), ':integer');
});

test('client-rendered island content cannot create scripts, inline handlers or srcdoc', () => {
  const html = `<script type="text/sx">
    (defisland ~sinks (&key text)
      (div (script text) (img :src "/x.png" :onerror text) (iframe :srcdoc text) (a :href (str "javascript:" text) "x")))
  </script><sx-island data-sx-island="~sinks" data-sx-props='{:text "alert(1)"}'></sx-island>`;
  const { doc } = page(html);
  const island = doc.querySelector('sx-island');
  assert.equal(island.querySelectorAll('script').length, 0);
  assert.equal(island.querySelector('img').getAttribute('onerror'), null);
  assert.equal(island.querySelector('iframe').getAttribute('srcdoc'), null);
  assert.equal(island.querySelector('a').getAttribute('href'), 'about:invalid#sx-unsafe-url');
});

test('the same definitions arriving again are not re-run (shared signals survive)', async () => {
  const defs = '(define dedupe/shared (signal 0)) (defisland ~dedupe/show () (output (deref dedupe/shared)))';
  const { win, doc } = page(`<script type="text/sx">${defs}</script><div id="main"></div>
    <sx-island data-sx-island="~dedupe/show" data-sx-props="{}"><output>0</output></sx-island>
    <button id="b" sx-get="/again" sx-target="#main">b</button>`, {
    routes: { '/again': '', 'GET /again': `(script :type "text/sx" ${sx.serialize(defs)})` },
  });
  sx.evalString('(reset! dedupe/shared 5)');
  click(win, doc.getElementById('b'));
  await settle();
  assert.equal(sx.evalString('(deref dedupe/shared)'), 5);
  assert.equal(doc.querySelector('output').textContent, '5');
});

test('islands rendered by the server (sx-web render-html) hydrate without a mismatch', async () => {
  const { readFileSync } = await import('node:fs');
  const dir = new URL('./fixtures/', import.meta.url);
  const defs = readFileSync(new URL('server-islands.sx', dir), 'utf8').replace(/\(render-html[\s\S]*$/, '');
  const html = readFileSync(new URL('server-islands.html', dir), 'utf8');
  const before = sx.hydrationMismatches;
  const { doc } = page(`<script type="text/sx">${defs}</script><div id="host">${html}</div>`);
  const islands = [...doc.querySelectorAll('sx-island')];
  assert.equal(islands.length, 5);
  assert.ok(islands.every(i => sx.isHydrated(i)));
  assert.equal(sx.hydrationMismatches, before, 'no island fell back to a client render');
  const span = islands[0].querySelector('.n');
  sx.evalString('nil');
  assert.equal(span.textContent, 'Count: 3 times');
});

test('morph keeps a hydrated island with the same props; a changed one is re-hydrated', async () => {
  const { win, doc } = page(COUNTER + `<div id="box">${counterHtml(3, 'a')}${counterHtml(7, 'b')}<p>old</p></div>
    <button id="m" sx-get="/m" sx-target="#box" sx-swap="morph">m</button>`, {
    routes: { 'GET /m': `(<> (raw! ${sx.serialize(counterHtml(3, 'a') + counterHtml(8, 'b'))}) (p "new"))` },
  });
  click(win, doc.querySelector('#a .inc'));
  click(win, doc.querySelector('#b .inc'));
  assert.equal(doc.querySelector('#a .small').textContent, 'Count: 4');
  click(win, doc.getElementById('m'));
  await settle();
  assert.equal(doc.querySelector('#box p').textContent, 'new');
  assert.equal(doc.querySelector('#a span').textContent, 'Count: 4', 'same props: live state kept');
  assert.equal(doc.querySelector('#b span').textContent, 'Count: 8', 'new props: the server HTML, hydrated again');
  const clicks = [];
  doc.querySelector('#b .inc').addEventListener('click', () => clicks.push(1));
  sx.evalString('(define morph/handled 0)');
  click(win, doc.querySelector('#b .inc'));
  assert.equal(doc.querySelector('#b span').textContent, 'Count: 9');
  assert.equal(clicks.length, 1);
  click(win, doc.querySelector('#a .inc'));
  assert.equal(doc.querySelector('#a span').textContent, 'Count: 5');
});

test('a disposed island removes its event listeners', () => {
  const html = `<script type="text/sx">(define lis/count 0) (defisland ~lis () (button :on-click (fn (e) (set! lis/count (inc lis/count))) "b"))</script>
  <sx-island data-sx-island="~lis" data-sx-props="{}"><button>b</button></sx-island>`;
  const { win, doc } = page(html);
  const island = doc.querySelector('sx-island');
  const button = island.querySelector('button');
  click(win, button);
  assert.equal(sx.evalString('lis/count'), 1);
  sx.disposeIslands(island);
  click(win, button);
  assert.equal(sx.evalString('lis/count'), 1, 'no handler after disposal');
});

test('indentation in hand-written island HTML does not break hydration', () => {
  const before = sx.hydrationMismatches;
  const { win, doc } = page(COUNTER + `<sx-island data-sx-island="~counter" data-sx-props="{:start 1}">
    <div class="counter">
      <button class="dec">-</button><span class="small">Count: 1</span><button class="inc">+</button>
    </div>
  </sx-island>`);
  assert.equal(sx.hydrationMismatches, before);
  click(win, doc.querySelector('.inc'));
  assert.equal(doc.querySelector('span').textContent, 'Count: 2');
});
