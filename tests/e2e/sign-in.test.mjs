// End-to-end: single sign-on in Chromium across the cooperative's two hosts
// (`rose-ash serve`: the front door and the identity provider, different
// origins). Every redirect of the flow runs in the real browser, under the
// real cookies and content security policies.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { buildIfMissing, startCooperative, launchBrowser, withPage, text } from './harness.mjs';

const env = {};

before(async () => {
  buildIfMissing();
  env.host = await startCooperative();
  env.browser = await launchBrowser();
});

after(async () => {
  await env.browser?.close();
  await env.host?.stop();
});

test('sign up, sign in to an app through the provider, sign out everywhere, sign in again', () =>
  withPage(env, 'sign-in', async (page) => {
    const { base, idp } = env.host;
    // Create an account at the provider.
    await page.goto(`${idp}/signup`);
    await page.fill('input[name=name]', 'Grace');
    await page.fill('input[name=email]', 'grace@example.org');
    await page.fill('input[name=password]', 'a long password');
    await Promise.all([page.waitForURL(`${idp}/profile?welcome=1`), page.click('button[type=submit]')]);
    assert.match(await text(page, 'dl.profile'), /grace@example\.org/);

    // A members-only page of the front door: through the provider and back.
    await page.goto(`${base}/account`);
    await page.waitForURL(`${base}/account`);
    assert.equal(await text(page, 'main h1'), 'Signed in as Grace');
    assert.match(await text(page, '.account-nav'), /Grace/);
    const cookies = await page.context().cookies(base);
    const session = cookies.find(c => c.name === 'ra_site_session');
    assert.ok(session && session.httpOnly && session.sameSite === 'Lax', 'the app has its own HttpOnly SameSite=Lax session cookie');

    // Sign out on the app: the form posts to the app, which redirects to the
    // provider (another origin: the CSP's form-action must allow it) and back.
    await Promise.all([page.waitForURL(`${base}/`), page.click('.account-nav button[type=submit]')]);
    assert.match(await text(page, '.site-nav'), /Sign in/);

    // Signed out at the provider too: the members-only page asks to sign in.
    await page.goto(`${base}/account`);
    await page.waitForURL(u => u.href.startsWith(`${idp}/login`));
    await page.fill('input[name=email]', 'grace@example.org');
    await page.fill('input[name=password]', 'a long password');
    // The login form's submission ends, after redirects, on the app.
    await Promise.all([page.waitForURL(`${base}/account`), page.click('button[type=submit]')]);
    assert.equal(await text(page, 'main h1'), 'Signed in as Grace');
  }));

test('a wrong password is refused with a message, and nothing is signed in', () =>
  withPage(env, 'wrong-password', async (page) => {
    const { idp } = env.host;
    await page.goto(`${idp}/login`);
    await page.fill('input[name=email]', 'nobody@example.org');
    await page.fill('input[name=password]', 'not the password');
    await page.click('button[type=submit]');
    await page.waitForSelector('.form-error');
    assert.equal(await text(page, '.form-error'), 'The email or password is not right.');
    const cookies = await page.context().cookies(idp);
    assert.ok(!cookies.some(c => c.name === 'rose_ash_id_session'));
  }, { allowConsoleErrors: true }));
