// The identity provider driven by openid-client (npm), a certified OpenID
// Connect relying-party library nobody here wrote: discovery, the
// authorization code flow with PKCE, ID-token validation (signature by the
// JWKS, iss, aud, exp, nonce, at_hash, and the RFC 9207 `iss` response
// parameter the provider advertises), userinfo, refresh, introspection and
// revocation.
//
// Run by tests/interop/run, which starts the provider and registers the
// clients; it passes them in the environment (see authlib_test.py).
// The browser's part (sign-up, following the authorization URL, the consent
// form) is fetch with a small cookie jar; every protocol message is
// openid-client's.

import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as client from 'openid-client';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (run tests/interop/run)`);
  return v;
};
const ISSUER = env('ISSUER').replace(/\/$/, '');
const FIRST_ID = env('FIRST_ID');
const FIRST_SECRET = env('FIRST_SECRET');
const THIRD_ID = env('THIRD_ID');
const THIRD_SECRET = env('THIRD_SECRET');
const PUBLIC_ID = env('PUBLIC_ID');
const REDIRECT_URI = env('REDIRECT_URI');
const POST_LOGOUT_URI = env('POST_LOGOUT_URI');
const SCOPE = 'openid profile email offline_access';
const insecure = { execute: [client.allowInsecureRequests] }; // the issuer is http://127.0.0.1

/** A browser: fetch with cookies, redirects not followed. */
class Browser {
  constructor() {
    this.cookies = new Map();
  }

  async fetch(url, init = {}) {
    const headers = new Headers(init.headers);
    if (this.cookies.size) {
      headers.set('cookie', [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '));
    }
    const res = await fetch(url, { ...init, headers, redirect: 'manual' });
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const gone = attrs.some((a) => /^\s*max-age\s*=\s*0\s*$/i.test(a)) || value === '';
      if (gone) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return res;
  }

  post(url, fields) {
    return this.fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(fields).toString(),
    });
  }

  csrf() {
    const t = this.cookies.get('rose_ash_csrf');
    assert.ok(t, 'the provider set no rose_ash_csrf cookie');
    return t;
  }
}

/** A member signed up (and so signed in) at the provider. */
async function signUp() {
  const browser = new Browser();
  const email = `interop-${randomBytes(6).toString('hex')}@example.org`;
  const password = randomBytes(12).toString('base64url');
  let res = await browser.fetch(`${ISSUER}/signup`);
  assert.equal(res.status, 200);
  await res.text();
  res = await browser.post(`${ISSUER}/signup`, [
    ['name', 'Node Tester'],
    ['email', email],
    ['password', password],
    ['_csrf', browser.csrf()],
  ]);
  await res.text();
  assert.equal(res.status, 303, 'sign-up should redirect');
  assert.ok(browser.cookies.has('rose_ash_id_session'), 'sign-up set no provider session');
  return { browser, email, password };
}

const unescape = (s) =>
  s.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');

/** The hidden fields of the consent form. */
function consentFields(html) {
  const form = html.match(/<form[^>]*action="\/oauth\/authorize"[^>]*>([\s\S]*?)<\/form>/);
  assert.ok(form, `no consent form in: ${html.slice(0, 800)}`);
  const fields = [];
  for (const m of form[1].matchAll(/<input\b[^>]*>/g)) {
    const name = m[0].match(/\bname="([^"]*)"/);
    const value = m[0].match(/\bvalue="([^"]*)"/);
    if (name) fields.push([unescape(name[1]), value ? unescape(value[1]) : '']);
  }
  return fields;
}

/** Follows an authorization URL in the browser; returns the callback URL. */
async function authorize(browser, url, consent) {
  let res = await browser.fetch(url);
  if (consent) {
    assert.equal(res.status, 200, 'expected the consent screen');
    const fields = consentFields(await res.text()).filter(([k]) => k !== '_csrf');
    fields.push(['_csrf', browser.csrf()], ['decision', consent]);
    res = await browser.post(`${ISSUER}/oauth/authorize`, fields);
  }
  const body = await res.text();
  assert.ok([302, 303].includes(res.status), `expected a redirect back to the app, got ${res.status}: ${body.slice(0, 400)}`);
  return new URL(res.headers.get('location'));
}

/** At the provider's sign-in page `loginUrl` (from /oauth/authorize): signs
 * in and follows `next` back through the authorization endpoint; returns
 * the callback URL. */
async function signIn(member, loginUrl) {
  assert.equal(loginUrl.pathname, '/login', `expected the sign-in page, got ${loginUrl}`);
  let res = await member.browser.fetch(loginUrl);
  await res.text();
  res = await member.browser.post(`${ISSUER}/login`, [
    ['email', member.email],
    ['password', member.password],
    ['next', loginUrl.searchParams.get('next') ?? ''],
    ['_csrf', member.browser.csrf()],
  ]);
  await res.text();
  assert.equal(res.status, 303, 'sign-in should redirect');
  const back = new URL(res.headers.get('location'), ISSUER);
  assert.equal(back.pathname, '/oauth/authorize', `sign-in went on to ${back}`);
  return authorize(member.browser, back);
}

/** One code flow: returns the token response and what was sent. */
async function codeFlow(config, browser, { consent } = {}) {
  const pkceCodeVerifier = client.randomPKCECodeVerifier();
  const code_challenge = await client.calculatePKCECodeChallenge(pkceCodeVerifier);
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT_URI,
    scope: SCOPE,
    code_challenge,
    code_challenge_method: 'S256',
    state,
    nonce,
  });
  const callback = await authorize(browser, url, consent);
  const tokens = await client.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier,
    expectedState: state,
    expectedNonce: nonce,
    idTokenExpected: true,
  });
  return { tokens, nonce, state, callback };
}

let member;
let first; // a confidential first-party client, client_secret_basic
before(async () => {
  member = await signUp();
  first = await client.discovery(
    new URL(ISSUER),
    FIRST_ID,
    FIRST_SECRET,
    client.ClientSecretBasic(FIRST_SECRET),
    insecure,
  );
});

test('discovery', () => {
  const m = first.serverMetadata();
  assert.equal(m.issuer, ISSUER);
  assert.equal(m.authorization_endpoint, `${ISSUER}/oauth/authorize`);
  assert.equal(m.token_endpoint, `${ISSUER}/oauth/token`);
  assert.equal(m.jwks_uri, `${ISSUER}/oauth/jwks`);
  assert.ok(m.code_challenge_methods_supported.includes('S256'));
  assert.ok(m.id_token_signing_alg_values_supported.includes('RS256'));
  assert.equal(m.authorization_response_iss_parameter_supported, true);
  assert.ok(m.supportsPKCE('S256'));
});

test('code flow with PKCE; the ID token validated by openid-client', async () => {
  const { tokens, nonce, state, callback } = await codeFlow(first, member.browser);
  assert.equal(callback.searchParams.get('iss'), ISSUER);
  assert.equal(callback.searchParams.get('state'), state);
  assert.equal(tokens.token_type.toLowerCase(), 'bearer');
  assert.ok(tokens.access_token && tokens.refresh_token && tokens.id_token);
  assert.ok(tokens.expiresIn() > 0);
  const claims = tokens.claims();
  assert.equal(claims.iss, ISSUER);
  assert.equal(claims.aud, FIRST_ID);
  assert.equal(claims.nonce, nonce);
  assert.ok(claims.sid, 'the ID token has no sid');
  assert.ok(claims.at_hash, 'the ID token has no at_hash');
  assert.equal(claims.email, member.email);

  const info = await client.fetchUserInfo(first, tokens.access_token, claims.sub);
  assert.equal(info.sub, claims.sub);
  assert.equal(info.email, member.email);
  assert.equal(info.name, 'Node Tester');
});

test('refresh rotates the refresh token', async () => {
  const { tokens } = await codeFlow(first, member.browser);
  const sub = tokens.claims().sub;
  const refreshed = await client.refreshTokenGrant(first, tokens.refresh_token);
  assert.notEqual(refreshed.access_token, tokens.access_token);
  assert.ok(refreshed.refresh_token);
  assert.notEqual(refreshed.refresh_token, tokens.refresh_token);
  if (refreshed.id_token) {
    // openid-client checked it against the first ID token (OIDC Core §12.2).
    assert.equal(refreshed.claims().sub, sub);
  }
  const info = await client.fetchUserInfo(first, refreshed.access_token, sub);
  assert.equal(info.sub, sub);

  await assert.rejects(client.refreshTokenGrant(first, tokens.refresh_token), (e) => {
    assert.equal(e.error, 'invalid_grant', String(e));
    return true;
  });
});

test('introspection and revocation', async () => {
  const { tokens } = await codeFlow(first, member.browser);
  const live = await client.tokenIntrospection(first, tokens.access_token);
  assert.equal(live.active, true);
  assert.equal(live.client_id, FIRST_ID);
  assert.equal(live.sub, tokens.claims().sub);

  await client.tokenRevocation(first, tokens.refresh_token, { token_type_hint: 'refresh_token' });
  assert.equal((await client.tokenIntrospection(first, tokens.refresh_token)).active, false);
  assert.equal((await client.tokenIntrospection(first, tokens.access_token)).active, false);
  await assert.rejects(client.fetchUserInfo(first, tokens.access_token, client.skipSubjectCheck));
});

test('client_secret_post, as openid-client does by default', async () => {
  const config = await client.discovery(new URL(ISSUER), FIRST_ID, FIRST_SECRET, undefined, insecure);
  const { tokens } = await codeFlow(config, member.browser);
  assert.equal(tokens.claims().aud, FIRST_ID);
});

test('a public client (PKCE, no secret)', async () => {
  const config = await client.discovery(new URL(ISSUER), PUBLIC_ID, undefined, client.None(), insecure);
  const { tokens } = await codeFlow(config, member.browser);
  assert.equal(tokens.claims().aud, PUBLIC_ID);
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
  assert.ok(refreshed.access_token);
});

test('a third-party client through the consent screen', async () => {
  const someone = await signUp();
  const config = await client.discovery(new URL(ISSUER), THIRD_ID, THIRD_SECRET, undefined, insecure);
  const { tokens } = await codeFlow(config, someone.browser, { consent: 'allow' });
  const claims = tokens.claims();
  assert.equal(claims.aud, THIRD_ID);
  assert.equal(claims.email, someone.email);
  const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  assert.equal(info.email, someone.email);
});

test('signing in during the flow', async () => {
  // A member with no provider session is sent to sign in, then back.
  const someone = await signUp();
  const fresh = { ...someone, browser: new Browser() };
  const pkceCodeVerifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(first, {
    redirect_uri: REDIRECT_URI,
    scope: SCOPE,
    code_challenge: await client.calculatePKCECodeChallenge(pkceCodeVerifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  });
  const res = await fresh.browser.fetch(url);
  await res.text();
  assert.ok([302, 303].includes(res.status), `authorize answered ${res.status}`);
  const callback = await signIn(fresh, new URL(res.headers.get('location'), ISSUER));
  const tokens = await client.authorizationCodeGrant(first, callback, {
    pkceCodeVerifier,
    expectedState: state,
    expectedNonce: nonce,
  });
  assert.equal(tokens.claims().email, someone.email);
  // A second provider session: a different sid from the sign-up's.
  assert.ok(tokens.claims().sid);
});

test('RP-initiated logout through end_session_endpoint', async () => {
  const someone = await signUp();
  const { tokens } = await codeFlow(first, someone.browser);
  const state = client.randomState();
  const url = client.buildEndSessionUrl(first, {
    id_token_hint: tokens.id_token,
    post_logout_redirect_uri: POST_LOGOUT_URI,
    state,
  });
  assert.equal(url.origin + url.pathname, `${ISSUER}/oauth/logout`);
  const res = await someone.browser.fetch(url);
  await res.text();
  assert.ok([302, 303].includes(res.status), `logout answered ${res.status}`);
  const back = new URL(res.headers.get('location'));
  assert.equal(back.origin + back.pathname, POST_LOGOUT_URI);
  assert.equal(back.searchParams.get('state'), state);
  assert.ok(!someone.browser.cookies.has('rose_ash_id_session'), 'the provider session cookie is still set');
  // Signed out: the next authorization request goes to the sign-in page.
  const again = await someone.browser.fetch(
    client.buildAuthorizationUrl(first, {
      redirect_uri: REDIRECT_URI,
      scope: 'openid',
      code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()),
      code_challenge_method: 'S256',
    }),
  );
  await again.text();
  assert.equal(new URL(again.headers.get('location'), ISSUER).pathname, '/login');
});

test('a wrong code_verifier is refused with invalid_grant', async () => {
  const pkceCodeVerifier = client.randomPKCECodeVerifier();
  const code_challenge = await client.calculatePKCECodeChallenge(pkceCodeVerifier);
  const state = client.randomState();
  const url = client.buildAuthorizationUrl(first, {
    redirect_uri: REDIRECT_URI,
    scope: SCOPE,
    code_challenge,
    code_challenge_method: 'S256',
    state,
  });
  const callback = await authorize(member.browser, url);
  await assert.rejects(
    client.authorizationCodeGrant(first, callback, {
      pkceCodeVerifier: client.randomPKCECodeVerifier(),
      expectedState: state,
    }),
    (e) => {
      assert.equal(e.error, 'invalid_grant', String(e));
      return true;
    },
  );
});

// OpenID Connect Core §3.1.2.1: "max_age ... If the elapsed time is greater
// than this value, the OP MUST attempt to actively re-authenticate the
// End-User", and the ID token then carries auth_time, which the client
// checks (openid-client does, given maxAge). A member who signed in more
// than max_age seconds ago must be sent to sign in again, not handed a code.
test('max_age: an older sign-in is not enough', async () => {
  const someone = await signUp();
  await new Promise((r) => setTimeout(r, 3100));
  const pkceCodeVerifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(first, {
    redirect_uri: REDIRECT_URI,
    scope: SCOPE,
    code_challenge: await client.calculatePKCECodeChallenge(pkceCodeVerifier),
    code_challenge_method: 'S256',
    state,
    nonce,
    max_age: '2',
  });
  let res = await someone.browser.fetch(url);
  await res.text();
  assert.ok([302, 303].includes(res.status), `authorize answered ${res.status}`);
  let location = new URL(res.headers.get('location'), ISSUER);
  assert.equal(
    location.origin,
    ISSUER,
    `a sign-in older than max_age=2 got a code without signing in again: ${location}`,
  );
  location = await signIn(someone, location);
  const tokens = await client.authorizationCodeGrant(first, location, {
    pkceCodeVerifier,
    expectedState: state,
    expectedNonce: nonce,
    maxAge: 2,
  });
  assert.ok(tokens.claims().auth_time, 'the ID token has no auth_time');
});
