"""The identity provider driven by Authlib, an OAuth 2.0 / OpenID Connect
client nobody here wrote: authorization code + PKCE (S256), the ID token
checked against the provider's JWKS, userinfo, refresh-token rotation,
revocation and introspection, a third-party client through the consent
screen, and the requests the provider must refuse.

Run by tests/interop/run, which starts the provider and registers the
clients; it passes them in the environment:

  ISSUER                        the provider's issuer URL
  FIRST_ID, FIRST_SECRET        a confidential first-party client
  THIRD_ID, THIRD_SECRET        a confidential third-party client (consent)
  PUBLIC_ID                     a public first-party client (PKCE, no secret)
  REDIRECT_URI                  the redirect URI all three registered
  REDIRECT_URI_QUERY            a second one of FIRST_ID's, with a query

Only the browser's part (signing up, following the authorization URL,
the consent form) is done by hand with requests; every protocol message
is Authlib's.
"""

import html.parser
import os
import secrets
import sys
import time
import unittest
import urllib.parse
import warnings

import requests

# authlib.jose still works in Authlib 1.x but warns that joserfc is its
# successor; the warning is not this test's business. (Authlib sets its
# warnings to "always" when first imported, so filter after that.)
from authlib.deprecate import AuthlibDeprecationWarning  # noqa: E402

warnings.filterwarnings("ignore", category=AuthlibDeprecationWarning)

from authlib.common.security import generate_token  # noqa: E402
from authlib.integrations.requests_client import OAuth2Session, OAuthError  # noqa: E402
from authlib.jose import JsonWebKey, jwt  # noqa: E402
from authlib.oidc.core import CodeIDToken  # noqa: E402

ISSUER = os.environ["ISSUER"].rstrip("/")
FIRST_ID = os.environ["FIRST_ID"]
FIRST_SECRET = os.environ["FIRST_SECRET"]
THIRD_ID = os.environ["THIRD_ID"]
THIRD_SECRET = os.environ["THIRD_SECRET"]
PUBLIC_ID = os.environ["PUBLIC_ID"]
REDIRECT_URI = os.environ["REDIRECT_URI"]
REDIRECT_URI_QUERY = os.environ["REDIRECT_URI_QUERY"]
SCOPE = "openid profile email offline_access"
TIMEOUT = 10


def discovery():
    r = requests.get(f"{ISSUER}/.well-known/openid-configuration", timeout=TIMEOUT)
    r.raise_for_status()
    return r.json()


META = discovery()


class Form(html.parser.HTMLParser):
    """The fields of the first form whose action is `action`."""

    def __init__(self, action):
        super().__init__()
        self.action = action
        self.inside = False
        self.done = False
        self.fields = []
        self.buttons = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and not self.done and a.get("action") == self.action:
            self.inside = True
        elif self.inside and tag == "input" and a.get("name"):
            self.fields.append((a["name"], a.get("value") or ""))
        elif self.inside and tag == "button" and a.get("name"):
            self.buttons.append((a["name"], a.get("value") or ""))

    def handle_endtag(self, tag):
        if tag == "form" and self.inside:
            self.inside = False
            self.done = True


class Member:
    """A browser with a member signed in at the provider."""

    def __init__(self):
        self.browser = requests.Session()
        self.email = f"interop-{secrets.token_hex(6)}@example.org"
        self.password = secrets.token_urlsafe(12)
        r = self.browser.get(f"{ISSUER}/signup", timeout=TIMEOUT)
        r.raise_for_status()
        r = self.browser.post(
            f"{ISSUER}/signup",
            data={
                "name": "Interop Tester",
                "email": self.email,
                "password": self.password,
                "_csrf": self.csrf(),
            },
            allow_redirects=False,
            timeout=TIMEOUT,
        )
        if r.status_code != 303 or "rose_ash_id_session" not in self.browser.cookies:
            raise AssertionError(f"sign-up failed: {r.status_code} {r.text[:500]}")

    def csrf(self):
        return self.browser.cookies["rose_ash_csrf"]

    def authorize(self, url, consent=None):
        """Follows an authorization URL as the member's browser would and
        returns the URL the provider sends the browser back to.
        `consent` is "allow" or "deny" to answer a consent screen (which
        then must appear), None to expect none."""
        r = self.browser.get(url, allow_redirects=False, timeout=TIMEOUT)
        if consent is None:
            if r.status_code not in (302, 303):
                raise AssertionError(
                    f"expected a redirect back to the app, got {r.status_code}: {r.text[:500]}"
                )
            return r.headers["location"]
        if r.status_code != 200:
            raise AssertionError(f"expected the consent screen, got {r.status_code}: {r.text[:300]}")
        form = Form("/oauth/authorize")
        form.feed(r.text)
        if ("decision", consent) not in form.buttons:
            raise AssertionError(f"no {consent} button on the consent screen: {r.text[:800]}")
        fields = [(k, v) for k, v in form.fields if k != "_csrf"]
        fields += [("_csrf", self.csrf()), ("decision", consent)]
        r = self.browser.post(
            f"{ISSUER}/oauth/authorize", data=fields, allow_redirects=False, timeout=TIMEOUT
        )
        if r.status_code not in (302, 303):
            raise AssertionError(f"consent answer: {r.status_code}: {r.text[:500]}")
        return r.headers["location"]


def session(client_id, secret=None, auth_method="client_secret_basic", redirect_uri=REDIRECT_URI):
    return OAuth2Session(
        client_id,
        secret,
        scope=SCOPE,
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        token_endpoint_auth_method=auth_method if secret else "none",
        revocation_endpoint_auth_method=auth_method if secret else "none",
        default_timeout=TIMEOUT,
    )


def query(url):
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))


def decode_id_token(id_token, client_id, nonce, access_token):
    """Verifies the ID token's signature with the provider's JWKS and its
    claims as OpenID Connect Core §3.1.3.7 asks (iss, aud, azp, exp, iat,
    nonce, at_hash)."""
    jwks = requests.get(META["jwks_uri"], timeout=TIMEOUT).json()
    claims = jwt.decode(
        id_token,
        JsonWebKey.import_key_set(jwks),
        claims_cls=CodeIDToken,
        claims_options={
            "iss": {"essential": True, "value": ISSUER},
            "aud": {"essential": True, "value": client_id},
        },
        claims_params={"nonce": nonce, "client_id": client_id, "access_token": access_token},
    )
    claims.validate(leeway=30)
    return claims


class Flow:
    """One authorization-code flow of an Authlib client."""

    def __init__(self, client, member, consent=None, nonce=True, **extra):
        self.client = client
        self.verifier = generate_token(64)
        self.nonce = generate_token(24) if nonce else None
        params = dict(extra)
        if self.nonce:
            params["nonce"] = self.nonce
        self.url, self.state = client.create_authorization_url(
            META["authorization_endpoint"], code_verifier=self.verifier, **params
        )
        self.callback = member.authorize(self.url, consent)
        self.params = query(self.callback)

    def fetch(self, verifier=None):
        return self.client.fetch_token(
            META["token_endpoint"],
            authorization_response=self.callback,
            code_verifier=verifier or self.verifier,
        )


class AuthlibInterop(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.member = Member()

    def userinfo(self, access_token):
        return requests.get(
            META["userinfo_endpoint"],
            headers={"Authorization": f"Bearer {access_token}"},
            timeout=TIMEOUT,
        )

    def introspect(self, client, token, hint=None):
        r = client.introspect_token(
            META["introspection_endpoint"], token=token, token_type_hint=hint
        )
        self.assertEqual(r.status_code, 200, r.text)
        return r.json()

    def assert_refused(self, ctx, error):
        self.assertEqual(ctx.exception.error, error, ctx.exception.description)

    # ---------------------------------------------------------------- discovery

    def test_discovery(self):
        self.assertEqual(META["issuer"], ISSUER)
        self.assertIn("S256", META["code_challenge_methods_supported"])
        self.assertIn("code", META["response_types_supported"])
        self.assertTrue(META.get("authorization_response_iss_parameter_supported"))
        for k in ("revocation_endpoint", "introspection_endpoint", "userinfo_endpoint", "jwks_uri"):
            self.assertTrue(META[k].startswith(ISSUER + "/"), k)
        as_meta = requests.get(
            f"{ISSUER}/.well-known/oauth-authorization-server", timeout=TIMEOUT
        ).json()
        self.assertEqual(as_meta["issuer"], ISSUER)
        self.assertEqual(as_meta["token_endpoint"], META["token_endpoint"])

    # ------------------------------------------------- code + PKCE, ID token

    def test_code_pkce_id_token_userinfo(self):
        client = session(FIRST_ID, FIRST_SECRET)
        flow = Flow(client, self.member)
        auth = query(flow.url)
        self.assertEqual(auth["code_challenge_method"], "S256")
        self.assertIn("code_challenge", auth)
        # RFC 9207: the response names its issuer; state comes back as sent.
        self.assertEqual(flow.params.get("iss"), ISSUER)
        self.assertEqual(flow.params.get("state"), flow.state)
        self.assertTrue(flow.callback.startswith(REDIRECT_URI + "?"), flow.callback)

        token = flow.fetch()
        self.assertEqual(token["token_type"].lower(), "bearer")
        for k in ("access_token", "refresh_token", "id_token", "expires_in"):
            self.assertIn(k, token)
        self.assertEqual(set(token["scope"].split()), set(SCOPE.split()))

        claims = decode_id_token(token["id_token"], FIRST_ID, flow.nonce, token["access_token"])
        self.assertEqual(claims["iss"], ISSUER)
        self.assertEqual(claims["aud"], FIRST_ID)
        self.assertEqual(claims["nonce"], flow.nonce)
        self.assertTrue(claims.get("sid"), "the ID token has no sid")
        self.assertIn("at_hash", claims)
        self.assertEqual(claims["email"], self.member.email)

        # userinfo through Authlib's own bearer auth (the session holds the token).
        r = client.get(META["userinfo_endpoint"])
        self.assertEqual(r.status_code, 200, r.text)
        info = r.json()
        self.assertEqual(info["sub"], claims["sub"])
        self.assertEqual(info["email"], self.member.email)
        self.assertEqual(info["name"], "Interop Tester")

    def test_client_secret_post(self):
        client = session(FIRST_ID, FIRST_SECRET, auth_method="client_secret_post")
        flow = Flow(client, self.member)
        token = flow.fetch()
        decode_id_token(token["id_token"], FIRST_ID, flow.nonce, token["access_token"])

    def test_public_client(self):
        client = session(PUBLIC_ID)
        flow = Flow(client, self.member)
        token = flow.fetch()
        claims = decode_id_token(token["id_token"], PUBLIC_ID, flow.nonce, token["access_token"])
        self.assertEqual(claims["aud"], PUBLIC_ID)
        self.assertEqual(self.userinfo(token["access_token"]).status_code, 200)

    # ------------------------------------------------------------- refresh

    def test_refresh_rotates(self):
        client = session(FIRST_ID, FIRST_SECRET)
        flow = Flow(client, self.member)
        first = flow.fetch()
        old_refresh = first["refresh_token"]
        sub = decode_id_token(first["id_token"], FIRST_ID, flow.nonce, first["access_token"])["sub"]

        second = client.refresh_token(META["token_endpoint"], refresh_token=old_refresh)
        self.assertNotEqual(second["access_token"], first["access_token"])
        self.assertNotEqual(second["refresh_token"], old_refresh)
        r = self.userinfo(second["access_token"])
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(r.json()["sub"], sub)
        if "id_token" in second:
            # OIDC Core §12.2: same iss, sub, aud; no nonce needed.
            refreshed = decode_id_token(second["id_token"], FIRST_ID, None, second["access_token"])
            self.assertEqual(refreshed["sub"], sub)
            first_claims = decode_id_token(first["id_token"], FIRST_ID, flow.nonce, first["access_token"])
            self.assertEqual(refreshed.get("auth_time"), first_claims.get("auth_time"))

        # The old refresh token is spent.
        with self.assertRaises(OAuthError) as ctx:
            client.refresh_token(META["token_endpoint"], refresh_token=old_refresh)
        self.assert_refused(ctx, "invalid_grant")

    def test_refresh_needs_the_same_client(self):
        client = session(FIRST_ID, FIRST_SECRET)
        token = Flow(client, self.member).fetch()
        other = session(PUBLIC_ID)
        with self.assertRaises(OAuthError) as ctx:
            other.refresh_token(META["token_endpoint"], refresh_token=token["refresh_token"])
        self.assert_refused(ctx, "invalid_grant")

    # ---------------------------------------------- revocation, introspection

    def test_revoke_refresh_token_ends_the_grant(self):
        client = session(FIRST_ID, FIRST_SECRET)
        token = Flow(client, self.member).fetch()
        live = self.introspect(client, token["access_token"], "access_token")
        self.assertTrue(live["active"], live)
        self.assertEqual(live.get("client_id"), FIRST_ID)
        live = self.introspect(client, token["refresh_token"], "refresh_token")
        self.assertTrue(live["active"], live)

        r = client.revoke_token(
            META["revocation_endpoint"], token=token["refresh_token"], token_type_hint="refresh_token"
        )
        self.assertEqual(r.status_code, 200, r.text)

        self.assertEqual(self.introspect(client, token["refresh_token"], "refresh_token"), {"active": False})
        self.assertFalse(self.introspect(client, token["access_token"])["active"])
        r = self.userinfo(token["access_token"])
        self.assertEqual(r.status_code, 401, r.text)
        self.assertIn("invalid_token", r.headers.get("www-authenticate", ""))
        with self.assertRaises(OAuthError) as ctx:
            client.refresh_token(META["token_endpoint"], refresh_token=token["refresh_token"])
        self.assert_refused(ctx, "invalid_grant")

        # RFC 7009 §2.2: revoking what is already gone still answers 200.
        r = client.revoke_token(META["revocation_endpoint"], token=token["refresh_token"])
        self.assertEqual(r.status_code, 200, r.text)

    def test_revoke_access_token(self):
        client = session(FIRST_ID, FIRST_SECRET)
        token = Flow(client, self.member).fetch()
        r = client.revoke_token(
            META["revocation_endpoint"], token=token["access_token"], token_type_hint="access_token"
        )
        self.assertEqual(r.status_code, 200, r.text)
        self.assertFalse(self.introspect(client, token["access_token"])["active"])
        self.assertEqual(self.userinfo(token["access_token"]).status_code, 401)

    def test_introspection_needs_client_auth(self):
        client = session(FIRST_ID, FIRST_SECRET)
        token = Flow(client, self.member).fetch()
        r = requests.post(
            META["introspection_endpoint"], data={"token": token["access_token"]}, timeout=TIMEOUT
        )
        self.assertEqual(r.status_code, 401, r.text)
        self.assertEqual(r.json()["error"], "invalid_client")
        wrong = session(FIRST_ID, FIRST_SECRET + "x")
        r = wrong.introspect_token(META["introspection_endpoint"], token=token["access_token"])
        self.assertEqual(r.status_code, 401, r.text)
        self.assertEqual(r.json()["error"], "invalid_client")

    def test_state_round_trips_exactly(self):
        client = session(FIRST_ID, FIRST_SECRET)
        odd = "a b&c=d/é+%25?#x"
        flow = Flow(client, self.member, state=odd)
        self.assertEqual(flow.params.get("state"), odd)
        token = client.fetch_token(
            META["token_endpoint"],
            authorization_response=flow.callback,
            code_verifier=flow.verifier,
            state=odd,
        )
        self.assertIn("access_token", token)

    def test_redirect_uri_with_a_query(self):
        # RFC 6749 §3.1.2: the registered URI's query is kept, the response
        # parameters are added to it.
        client = session(FIRST_ID, FIRST_SECRET, redirect_uri=REDIRECT_URI_QUERY)
        flow = Flow(client, self.member)
        self.assertTrue(flow.callback.startswith(REDIRECT_URI_QUERY + "&"), flow.callback)
        self.assertEqual(flow.params.get("app"), "1")
        token = flow.fetch()
        self.assertIn("access_token", token)

    # ------------------------------------------------------ refused requests

    def test_unregistered_redirect_uri_is_not_followed(self):
        # RFC 6749 §4.1.2.1: with a redirect URI that does not match, the
        # provider tells the person and MUST NOT redirect.
        for uri in (REDIRECT_URI + "/other", REDIRECT_URI.replace("/cb", "/cb2"), "http://evil.example/cb"):
            client = session(FIRST_ID, FIRST_SECRET, redirect_uri=uri)
            url, _ = client.create_authorization_url(
                META["authorization_endpoint"], code_verifier=generate_token(64)
            )
            r = self.member.browser.get(url, allow_redirects=False, timeout=TIMEOUT)
            self.assertEqual(r.status_code, 400, f"{uri}: {r.status_code} {r.headers.get('location')}")
            self.assertNotIn("location", r.headers)

    def test_prompt_none_without_a_session(self):
        client = session(FIRST_ID, FIRST_SECRET)
        url, state = client.create_authorization_url(
            META["authorization_endpoint"], code_verifier=generate_token(64), prompt="none"
        )
        r = requests.get(url, allow_redirects=False, timeout=TIMEOUT)
        self.assertIn(r.status_code, (302, 303), r.text[:300])
        back = query(r.headers["location"])
        self.assertEqual(back.get("error"), "login_required", back)
        self.assertEqual(back.get("state"), state)
        self.assertEqual(back.get("iss"), ISSUER)


    def test_wrong_code_verifier(self):
        client = session(FIRST_ID, FIRST_SECRET)
        flow = Flow(client, self.member)
        with self.assertRaises(OAuthError) as ctx:
            flow.fetch(verifier=generate_token(64))
        self.assert_refused(ctx, "invalid_grant")
        # The code was spent by the failed attempt.
        with self.assertRaises(OAuthError) as ctx:
            flow.fetch()
        self.assert_refused(ctx, "invalid_grant")

    def test_code_replay_revokes_the_grant(self):
        client = session(FIRST_ID, FIRST_SECRET)
        flow = Flow(client, self.member)
        token = flow.fetch()
        with self.assertRaises(OAuthError) as ctx:
            flow.fetch()
        self.assert_refused(ctx, "invalid_grant")
        # RFC 6749 §4.1.2: tokens issued on a replayed code SHOULD be revoked.
        self.assertEqual(self.userinfo(token["access_token"]).status_code, 401)

    def test_missing_pkce_is_refused(self):
        # A client that sends no code_challenge: PKCE is required.
        client = OAuth2Session(
            FIRST_ID, FIRST_SECRET, scope=SCOPE, redirect_uri=REDIRECT_URI, default_timeout=TIMEOUT
        )
        url, state = client.create_authorization_url(META["authorization_endpoint"], nonce="n")
        r = self.member.browser.get(url, allow_redirects=False, timeout=TIMEOUT)
        self.assertIn(r.status_code, (302, 303), r.text[:300])
        back = query(r.headers["location"])
        self.assertEqual(back.get("error"), "invalid_request", back)
        self.assertNotIn("code", back)
        self.assertEqual(back.get("state"), state)
        self.assertEqual(back.get("iss"), ISSUER)

    def test_wrong_client_secret(self):
        client = session(FIRST_ID, FIRST_SECRET)
        flow = Flow(client, self.member)
        wrong = session(FIRST_ID, "not-the-secret-" + "x" * 32)
        with self.assertRaises(OAuthError) as ctx:
            wrong.fetch_token(
                META["token_endpoint"],
                authorization_response=flow.callback,
                code_verifier=flow.verifier,
            )
        self.assert_refused(ctx, "invalid_client")

    # ------------------------------------------------ third-party: consent

    def test_third_party_consent(self):
        member = Member()
        client = session(THIRD_ID, THIRD_SECRET)
        flow = Flow(client, member, consent="allow")
        self.assertEqual(flow.params.get("iss"), ISSUER)
        self.assertEqual(flow.params.get("state"), flow.state)
        token = flow.fetch()
        claims = decode_id_token(token["id_token"], THIRD_ID, flow.nonce, token["access_token"])
        self.assertEqual(claims["email"], member.email)
        self.assertTrue(claims.get("sid"))
        self.assertEqual(self.userinfo(token["access_token"]).json()["sub"], claims["sub"])

        # The consent is remembered for the same scopes: no screen the second time.
        again = Flow(session(THIRD_ID, THIRD_SECRET), member)
        self.assertIn("code", again.params)

    def test_third_party_deny(self):
        member = Member()
        client = session(THIRD_ID, THIRD_SECRET)
        flow = Flow(client, member, consent="deny")
        self.assertEqual(flow.params.get("error"), "access_denied", flow.params)
        self.assertNotIn("code", flow.params)
        self.assertEqual(flow.params.get("state"), flow.state)


if __name__ == "__main__":
    started = time.monotonic()
    suite = unittest.defaultTestLoader.loadTestsFromTestCase(AuthlibInterop)
    result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
    failed = len(result.failures) + len(result.errors)
    passed = result.testsRun - failed - len(result.skipped)
    print(f"authlib interop took {time.monotonic() - started:.1f}s")
    print(f"authlib: {passed} passed, {failed} failed")
    sys.exit(0 if result.wasSuccessful() and result.testsRun > 0 else 1)
