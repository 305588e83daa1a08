// End-to-end: the blog, events and shop peers as separate processes (as an
// operator runs them across machines), each with its own store, signing
// every request to the others; members sign in through the identity
// provider. Driven in Chromium: allocate a blog post to a calendar,
// schedule "Summer Gig" featuring it, buy a ticket, see the sold count on
// the events page and the order on the shop page. Then the shop goes
// down: buying says so and sells nothing; it comes back, the retry sells
// exactly one ticket, a double submission sells no second, and restarting
// each peer loses nothing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { buildIfMissing, startPeers, launchBrowser, withPage, text } from './harness.mjs';

const env = {};

before(async () => {
  buildIfMissing();
  env.host = await startPeers();
  env.browser = await launchBrowser();
});

after(async () => {
  await env.browser?.close();
  await env.host?.stopAll();
});

/** Signs in to `app` through the provider (already signed in there) and lands on `path`. */
async function signInTo(page, app, path) {
  await page.goto(`${app}/auth/login?next=${encodeURIComponent(path)}`);
  await page.waitForURL(`${app}${path}`);
}

const soldCount = async (page, slug) => Number(await text(page, `#event-${slug} .sold-count`));

test('allocate a post, schedule an event featuring it, buy a ticket, see it sold and ordered; then the shop goes down and comes back', () =>
  withPage(env, 'peers', async (page) => {
    const { idp, blog, events, shop } = env.host;

    // A member of the cooperative.
    await page.goto(`${idp}/signup`);
    await page.fill('input[name=name]', 'Ada');
    await page.fill('input[name=email]', 'ada@example.org');
    await page.fill('input[name=password]', 'a long password');
    await Promise.all([page.waitForURL(`${idp}/profile?welcome=1`), page.click('button[type=submit]')]);

    // On the blog: allocate the welcome post to the events peer's Main stage.
    await signInTo(page, blog, '/posts/welcome');
    assert.match(await text(page, 'article.post'), /Welcome/);
    await page.selectOption('#allocate select[name=calendar]', { label: 'Main stage' });
    await Promise.all([
      page.waitForURL(u => u.pathname === '/posts/welcome' && u.search.includes('allocated')),
      page.click('#allocate button[type=submit]'),
    ]);
    assert.match(await text(page, 'main'), /Allocated to Main stage/);

    // On the events peer: the post is allocated, its title fetched from the blog.
    await signInTo(page, events, '/calendars');
    assert.match(await text(page, '#calendar-main .allocated'), /Welcome to the cooperative/);

    // Schedule "Summer Gig" featuring it.
    const schedule = '#calendar-main form.schedule';
    await page.fill(`${schedule} input[name=title]`, 'Summer Gig');
    await page.selectOption(`${schedule} select[name=featured]`, { label: 'Welcome to the cooperative' });
    await Promise.all([
      page.waitForURL(u => u.pathname === '/calendars' && u.search.includes('scheduled')),
      page.click(`${schedule} button[type=submit]`),
    ]);
    assert.match(await text(page, '#event-summer-gig'), /Summer Gig/);
    assert.match(await text(page, '#event-summer-gig .featured'), /Featuring Welcome to the cooperative/);
    assert.equal(await soldCount(page, 'summer-gig'), 0);

    // Buy a ticket: the shop makes the order, the sold count rises.
    await Promise.all([
      page.waitForURL(u => u.search.includes('bought')),
      page.click('#event-summer-gig form.buy button'),
    ]);
    assert.equal(await soldCount(page, 'summer-gig'), 1);

    // The order on the shop's page.
    await signInTo(page, shop, '/orders');
    assert.equal(await page.locator('table.orders tr.order').count(), 1);
    assert.match(await text(page, 'table.orders tr.order .order-event'), /Summer Gig/);

    // The shop goes down. Buying says so clearly and sells nothing.
    await env.host.stop('shop');
    await page.goto(`${events}/calendars`);
    await page.click('#event-summer-gig form.buy button');
    await page.waitForSelector('p.error');
    assert.match(await text(page, 'p.error'), /shop is not reachable/);
    assert.equal(await soldCount(page, 'summer-gig'), 1, 'no sold edge without an order');
    const retryKey = await page.inputValue('#event-summer-gig form.buy input[name=key]');

    // It comes back (same data). The retry, with the same key, sells one ticket.
    await env.host.start('shop');
    await Promise.all([
      page.waitForURL(u => u.search.includes('bought')),
      page.click('#event-summer-gig form.buy button'),
    ]);
    assert.equal(await soldCount(page, 'summer-gig'), 2);

    // Submitting that same purchase again (a double click, a resent form)
    // finds the order already made: no second order, no third sale.
    const again = await page.evaluate(async ({ key }) => {
      const form = document.querySelector('#event-summer-gig form.buy');
      const body = new URLSearchParams(new FormData(form));
      body.set('key', key);
      const r = await fetch(form.action, { method: 'POST', body, redirect: 'follow' });
      return r.status;
    }, { key: retryKey });
    assert.equal(again, 200);
    await page.reload();
    assert.equal(await soldCount(page, 'summer-gig'), 2, 'a resubmitted purchase sold a ticket twice');

    // Restarting the events peer loses nothing either.
    await env.host.stop('events');
    await env.host.start('events');
    await page.goto(`${events}/calendars`);
    assert.equal(await soldCount(page, 'summer-gig'), 2);
    assert.match(await text(page, '#calendar-main .allocated'), /Welcome to the cooperative/);

    // The shop lists both orders, the first one made before its restart.
    await page.goto(`${shop}/orders`);
    assert.equal(await page.locator('table.orders tr.order').count(), 2);

    // And the blog: its post, and the member's session there, survive a restart.
    await env.host.stop('blog');
    await env.host.start('blog');
    await page.goto(`${blog}/posts/welcome`);
    assert.match(await text(page, 'article.post'), /Welcome/);
    assert.match(await text(page, '.account-nav'), /Ada/);
    assert.equal(await page.locator('#allocate select[name=calendar] option').count(), 2);
  }, { allowConsoleErrors: true }));
