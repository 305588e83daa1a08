//! The OAuth 2.0 / OpenID Connect provider: clients, the code flow with
//! PKCE, consent, ID tokens, userinfo, introspection, revocation,
//! refresh rotation.

use fed::crypto::{b64url, sha256, token_key};
use fed::oauth::{Authorize, Provider, ns};
use fed::rp::verify_id_token;
use serde_json::json;

use crate::both;
use crate::common::*;

both!(register_confidential_and_public_clients, |env| {
    let secret = env.register(client("app", true, false), true).unwrap();
    assert!(secret.len() >= 32);
    let c = env.p.client("app").unwrap().unwrap();
    assert_eq!(c.secret_hash.as_deref(), Some(token_key(&secret).as_str()));
    // Only the hash is stored.
    let rec = env.record(ns::CLIENT, "app");
    assert!(!rec.value.contains(&secret));
    assert_eq!(env.register(client("spa", true, false), false), None);
    assert_eq!(env.p.client("spa").unwrap().unwrap().secret_hash, None);
    // A public client cannot smuggle in a secret hash.
    let mut sneaky = client("sneaky", true, false);
    sneaky.secret_hash = Some(token_key("guess"));
    env.register(sneaky, false);
    assert_eq!(env.p.client("sneaky").unwrap().unwrap().secret_hash, None);
    // A chosen secret must be long.
    let given = "s".repeat(32);
    let got = env
        .p
        .register_client(client("given", true, false), true, Some(&given))
        .unwrap();
    assert_eq!(got.as_deref(), Some(given.as_str()));
    assert!(
        env.p
            .register_client(client("short", true, false), true, Some("too short"))
            .is_err()
    );
    // Bad registrations.
    let mut bad = Vec::new();
    for id in ["", "has space", "slash/id", "ünïcode"] {
        bad.push(client(id, true, false));
    }
    for uri in [
        "javascript:alert(1)",
        "https://app.example.org/cb#frag",
        "/relative",
        "https://app.example.org/a b",
        "ftp://app.example.org/",
    ] {
        let mut c = client("x", true, false);
        c.redirect_uris = vec![uri.to_owned()];
        bad.push(c.clone());
        let mut c = client("x", true, false);
        c.post_logout_redirect_uris = vec![uri.to_owned()];
        bad.push(c.clone());
        c.post_logout_redirect_uris.clear();
        c.backchannel_logout_uri = Some(uri.to_owned());
        bad.push(c);
    }
    let mut none = client("x", true, false);
    none.redirect_uris.clear();
    bad.push(none);
    for c in bad {
        assert!(
            env.p.register_client(c.clone(), false, None).is_err(),
            "{c:?}"
        );
    }
    assert_eq!(env.p.client("x").unwrap(), None);
    assert_eq!(env.p.client("nobody").unwrap(), None);
});

both!(code_flow_first_party_confidential, |env| {
    let secret = env.register(client("app", true, false), true).unwrap();
    let (m, _, session) = env.signed_in("ann@example.org");
    let l = Login::new("app", "openid profile email");
    // No session: the member must sign in first.
    assert_eq!(
        env.p.authorize(&l.params, None, false).unwrap(),
        Authorize::Login
    );
    // Signed in, first-party: straight back with a code, state and iss.
    let code = env.code(&l, &session);
    // The code is stored only as its hash.
    assert!(env.list(ns::CODE).iter().all(|r| r.key != code));
    // Exchange with client_secret_basic.
    let f = form(&[
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", &callback("app")),
        ("code_verifier", &l.req.verifier),
    ]);
    let t = env.p.token(&f, Some(&basic("app", &secret))).unwrap();
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["expires_in"], fed::oauth::ACCESS_TTL_S);
    assert_eq!(t["scope"], "openid profile email");
    let access = field(&t, "access_token");
    let refresh = field(&t, "refresh_token");
    assert_ne!(access, refresh);
    // The ID token.
    let id_token = field(&t, "id_token");
    let claims = verify_id_token(&id_token, &env.keys(), ISSUER, "app", &l.req.nonce).unwrap();
    assert_eq!(claims["sub"], json!(m.id));
    assert_eq!(claims["aud"], "app");
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["nonce"], json!(l.req.nonce));
    assert_eq!(claims["sid"], json!(session.sid));
    assert_eq!(claims["email"], "ann@example.org");
    assert_eq!(claims["name"], "Ann Example");
    assert_eq!(claims["auth_time"], json!(session.auth_time / 1000));
    let at_hash = b64url(&sha256(access.as_bytes())[..16]);
    assert_eq!(
        claims["at_hash"],
        json!(at_hash),
        "at_hash binds the access token"
    );
    // The RP's checks: wrong nonce, client or issuer are refused.
    assert!(verify_id_token(&id_token, &env.keys(), ISSUER, "app", "other nonce").is_err());
    assert!(verify_id_token(&id_token, &env.keys(), ISSUER, "other-app", &l.req.nonce).is_err());
    assert!(
        verify_id_token(
            &id_token,
            &env.keys(),
            "https://evil.example",
            "app",
            &l.req.nonce
        )
        .is_err()
    );
    // Userinfo with the access token.
    let u = env.userinfo(&access).unwrap();
    assert_eq!(u["sub"], json!(m.id));
    assert_eq!(u["email"], "ann@example.org");
    assert_eq!(u["email_verified"], false);
    assert_eq!(u["roles"], json!(["admin"]));
    // Introspection.
    let i = env.introspect("app", &secret, &access);
    assert_eq!(i["active"], true);
    assert_eq!(i["sub"], json!(m.id));
    assert_eq!(i["client_id"], "app");
    assert_eq!(i["token_type"], "Bearer");
    assert_eq!(i["scope"], "openid profile email");
    assert_eq!(i["iss"], ISSUER);
    let ir = env.introspect("app", &secret, &refresh);
    assert_eq!(ir["active"], true);
    assert_eq!(ir["token_type"], "refresh_token");
    assert_eq!(
        env.introspect("app", &secret, "no such token")["active"],
        false
    );
    // Revoking the access token: inactive, and userinfo refuses it.
    env.p
        .revoke(&form(&[("token", &access)]), Some(&basic("app", &secret)))
        .unwrap();
    assert_eq!(env.introspect("app", &secret, &access)["active"], false);
    assert_eq!(
        oauth_err(env.userinfo(&access), "invalid_token").status,
        401
    );
    // The refresh token still works (only the access token was revoked).
    env.refresh("app", Some(&secret), &refresh, None).unwrap();
});

both!(introspection_refuses_public_clients, |env| {
    env.register(client("spa", true, false), true);
    let secret = env.register(client("app", true, false), true).unwrap();
    env.register(client("pub", true, false), false);
    let (_, _, s) = env.signed_in("ann@example.org");
    let t = env.tokens(&Login::new("pub", "openid"), &s, None);
    let access = field(&t, "access_token");
    let e = oauth_err(
        env.p
            .introspect(&form(&[("token", &access), ("client_id", "pub")]), None),
        "invalid_client",
    );
    assert_eq!(e.status, 401);
    // A confidential client may introspect it.
    assert_eq!(env.introspect("app", &secret, &access)["active"], true);
    // Wrong secret.
    let e = oauth_err(
        env.p
            .introspect(&form(&[("token", &access)]), Some(&basic("app", "x"))),
        "invalid_client",
    );
    assert_eq!(e.status, 401);
});

both!(third_party_consent, |env| {
    env.register(client("other", false, false), false);
    let (m, _, s) = env.signed_in("ann@example.org");
    let l = Login::new("other", "openid email");
    let req = match env.p.authorize(&l.params, Some(&s), false).unwrap() {
        Authorize::Consent(r) => r,
        other => panic!("a third-party client must ask for consent, got {other:?}"),
    };
    assert_eq!(req.client.id, "other");
    assert_eq!(req.scope, vec!["openid".to_owned(), "email".to_owned()]);
    assert_eq!(req.redirect_uri, callback("other"));
    // prompt=none cannot skip consent.
    let url = redirect(
        env.p
            .authorize(&l.with("prompt", Some("none")), Some(&s), false)
            .unwrap(),
    );
    let q = query(&url);
    assert_eq!(q["error"], "consent_required");
    assert!(!q.contains_key("code"));
    // Declining: access_denied, with state and iss.
    let url = redirect(env.p.consent(&l.params, &s, false).unwrap());
    assert!(url.starts_with(&callback("other")), "{url}");
    let q = query(&url);
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["state"], l.req.state);
    assert_eq!(q["iss"], ISSUER);
    assert!(!q.contains_key("code"));
    // Still no consent on record.
    assert!(matches!(
        env.p.authorize(&l.params, Some(&s), false).unwrap(),
        Authorize::Consent(_)
    ));
    // Approving: a code, which a public client exchanges with PKCE alone.
    let url = redirect(env.p.consent(&l.params, &s, true).unwrap());
    let q = query(&url);
    assert_eq!(q["state"], l.req.state);
    assert_eq!(q["iss"], ISSUER);
    let t = env
        .exchange(
            "other",
            None,
            &q["code"],
            Some(&l.req.verifier),
            Some(&callback("other")),
        )
        .unwrap();
    let claims = verify_id_token(
        &field(&t, "id_token"),
        &env.keys(),
        ISSUER,
        "other",
        &l.req.nonce,
    )
    .unwrap();
    assert_eq!(claims["sub"], json!(m.id));
    // Consent is remembered for the scopes approved...
    let again = Login::new("other", "openid");
    env.code(&again, &s);
    // ...but not for more, nor when the client asks again explicitly.
    let wider = Login::new("other", "openid email profile");
    assert!(matches!(
        env.p.authorize(&wider.params, Some(&s), false).unwrap(),
        Authorize::Consent(_)
    ));
    assert!(matches!(
        env.p
            .authorize(&again.with("prompt", Some("consent")), Some(&s), false)
            .unwrap(),
        Authorize::Consent(_)
    ));
    // And it is per member.
    let (_, _, bob) = env.signed_in("bob@example.org");
    assert!(matches!(
        env.p.authorize(&again.params, Some(&bob), false).unwrap(),
        Authorize::Consent(_)
    ));
});

both!(prompt_login_needs_a_fresh_sign_in, |env| {
    env.register(client("app", true, false), false);
    let (_, _, s) = env.signed_in("ann@example.org");
    let l = Login::new("app", "openid");
    let p = l.with("prompt", Some("login"));
    assert_eq!(
        env.p.authorize(&p, Some(&s), false).unwrap(),
        Authorize::Login
    );
    let url = redirect(env.p.authorize(&p, Some(&s), true).unwrap());
    assert!(query(&url).contains_key("code"));
});

both!(userinfo_needs_openid_scope_and_a_bearer_token, |env| {
    env.register(client("app", true, false), false);
    let (_, _, s) = env.signed_in("ann@example.org");
    let t = env.tokens(&Login::new("app", "profile"), &s, None);
    assert!(t.get("id_token").is_none(), "no ID token without openid");
    let access = field(&t, "access_token");
    assert_eq!(
        oauth_err(env.userinfo(&access), "insufficient_scope").status,
        403
    );
    for h in [
        None,
        Some(""),
        Some("Bearer"),
        Some("Bearer "),
        Some("Basic abc"),
        Some("bearer x"),
    ] {
        oauth_err(env.p.userinfo(h), "invalid_token");
    }
    // Scopes limit the claims.
    let t = env.tokens(&Login::new("app", "openid"), &s, None);
    let u = env.userinfo(&field(&t, "access_token")).unwrap();
    assert!(u.get("email").is_none() && u.get("name").is_none(), "{u}");
    // Case-insensitive scheme.
    let a = field(&t, "access_token");
    env.p.userinfo(Some(&format!("bEaReR {a}"))).unwrap();
});

both!(refresh_rotation_and_reuse_detection, |env| {
    let secret = env.register(client("app", true, false), true).unwrap();
    let b_secret = env.register(client("b", true, false), true).unwrap();
    let (m, _, s) = env.signed_in("ann@example.org");
    let t = env.tokens(&Login::new("app", "openid email"), &s, Some(&secret));
    let r1 = field(&t, "refresh_token");
    let a1 = field(&t, "access_token");
    // Another client cannot use it.
    oauth_err(
        env.refresh("b", Some(&b_secret), &r1, None),
        "invalid_grant",
    );
    // Rotation: a new refresh token, and the new one works.
    let t2 = env.refresh("app", Some(&secret), &r1, None).unwrap();
    let r2 = field(&t2, "refresh_token");
    let a2 = field(&t2, "access_token");
    assert_ne!(r2, r1);
    assert_eq!(t2["scope"], "openid email");
    assert_eq!(env.userinfo(&a2).unwrap()["sub"], json!(m.id));
    let t3 = env.refresh("app", Some(&secret), &r2, None).unwrap();
    let r3 = field(&t3, "refresh_token");
    let a3 = field(&t3, "access_token");
    // The used one fails...
    oauth_err(
        env.refresh("app", Some(&secret), &r2, None),
        "invalid_grant",
    );
    // ...and its reuse revokes the whole grant: the newest refresh token
    // and every access token of the grant.
    oauth_err(
        env.refresh("app", Some(&secret), &r3, None),
        "invalid_grant",
    );
    for a in [&a1, &a2, &a3] {
        oauth_err(env.userinfo(a), "invalid_token");
        assert_eq!(env.introspect("app", &secret, a)["active"], false);
    }
    assert_eq!(env.introspect("app", &secret, &r3)["active"], false);
    // Another grant of the same member is untouched.
    let other = env.tokens(&Login::new("app", "openid"), &s, Some(&secret));
    env.userinfo(&field(&other, "access_token")).unwrap();
    env.refresh("app", Some(&secret), &field(&other, "refresh_token"), None)
        .unwrap();
});

both!(refresh_first_token_reused_revokes_the_new_one, |env| {
    env.register(client("pub", true, false), false);
    let (_, _, s) = env.signed_in("ann@example.org");
    let t = env.tokens(&Login::new("pub", "openid"), &s, None);
    let r1 = field(&t, "refresh_token");
    let t2 = env.refresh("pub", None, &r1, None).unwrap();
    let r2 = field(&t2, "refresh_token");
    oauth_err(env.refresh("pub", None, &r1, None), "invalid_grant");
    oauth_err(env.refresh("pub", None, &r2, None), "invalid_grant");
    oauth_err(env.userinfo(&field(&t2, "access_token")), "invalid_token");
});

both!(refresh_cannot_widen_scope, |env| {
    env.register(client("app", true, false), false);
    let (_, _, s) = env.signed_in("ann@example.org");
    let t = env.tokens(&Login::new("app", "openid email"), &s, None);
    let r1 = field(&t, "refresh_token");
    for wider in [
        "openid email profile",
        "profile",
        "openid offline_access",
        "admin",
    ] {
        let e = oauth_err(env.refresh("app", None, &r1, Some(wider)), "invalid_scope");
        assert_eq!(e.status, 400);
    }
    assert_eq!(
        env.list(ns::ACCESS).len(),
        1,
        "no token was issued for a refused refresh"
    );
    // Narrowing is allowed (and the refused requests did not spend r1).
    let narrowed = env.refresh("app", None, &r1, Some("openid")).unwrap();
    assert_eq!(narrowed["scope"], "openid");
    let u = env.userinfo(&field(&narrowed, "access_token")).unwrap();
    assert!(
        u.get("email").is_none(),
        "narrowed scope gives fewer claims: {u}"
    );
});

both!(refused_refresh_keeps_the_refresh_token, |env| {
    env.register(client("app", true, false), false);
    let (_, _, s) = env.signed_in("ann@example.org");
    let t = env.tokens(&Login::new("app", "openid email"), &s, None);
    let r1 = field(&t, "refresh_token");
    let a1 = field(&t, "access_token");
    oauth_err(
        env.refresh("app", None, &r1, Some("openid email profile")),
        "invalid_scope",
    );
    // An error response must not change state: the client retries
    // with the scope it has and must get new tokens, not a revoked
    // grant.
    env.refresh("app", None, &r1, None).unwrap();
    env.userinfo(&a1).unwrap();
});

both!(revocation, |env| {
    let secret = env.register(client("app", true, false), true).unwrap();
    env.register(client("pub", true, false), false);
    let (_, _, s) = env.signed_in("ann@example.org");
    let t = env.tokens(&Login::new("app", "openid"), &s, Some(&secret));
    let (access, refresh) = (field(&t, "access_token"), field(&t, "refresh_token"));
    // Another client cannot revoke it.
    let e = oauth_err(
        env.p
            .revoke(&form(&[("token", &refresh), ("client_id", "pub")]), None),
        "unauthorized_client",
    );
    assert_eq!(e.status, 400);
    env.userinfo(&access).unwrap();
    // Unknown tokens are fine (RFC 7009 §2.2).
    env.p
        .revoke(
            &form(&[("token", "nonsense")]),
            Some(&basic("app", &secret)),
        )
        .unwrap();
    // Revoking the refresh token revokes the grant's access token too.
    env.p
        .revoke(
            &form(&[("token", &refresh), ("token_type_hint", "refresh_token")]),
            Some(&basic("app", &secret)),
        )
        .unwrap();
    oauth_err(env.userinfo(&access), "invalid_token");
    oauth_err(
        env.refresh("app", Some(&secret), &refresh, None),
        "invalid_grant",
    );
    // Unauthenticated revocation is refused.
    oauth_err(
        env.p
            .revoke(&form(&[("token", &access), ("client_id", "app")]), None),
        "invalid_client",
    );
});

both!(signing_key_survives_a_restart, |env| {
    env.register(client("app", true, false), false);
    let (_, _, s) = env.signed_in("ann@example.org");
    let l = Login::new("app", "openid");
    let t = env.tokens(&l, &s, None);
    let again = Provider::open(env.store.clone(), ISSUER).unwrap();
    assert_eq!(again.key.kid, env.p.key.kid);
    let keys = fed::jwt::PublicKeys::from_jwks(&again.key.jwks());
    verify_id_token(&field(&t, "id_token"), &keys, ISSUER, "app", &l.req.nonce).unwrap();
    let md = again.metadata();
    assert_eq!(md["issuer"], ISSUER);
    assert_eq!(md["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(md["response_types_supported"], json!(["code"]));
    assert_eq!(md["authorization_response_iss_parameter_supported"], true);
});

both!(tampered_id_token_is_rejected, |env| {
    env.register(client("app", true, false), false);
    let (_, _, s) = env.signed_in("ann@example.org");
    let l = Login::new("app", "openid");
    let id_token = field(&env.tokens(&l, &s, None), "id_token");
    let keys = env.keys();
    verify_id_token(&id_token, &keys, ISSUER, "app", &l.req.nonce).unwrap();
    let parts: Vec<&str> = id_token.split('.').collect();
    assert_eq!(parts.len(), 3);
    // Every single-character change of the payload is refused.
    let payload = parts[1];
    for i in (0..payload.len()).step_by(7) {
        let mut p: Vec<u8> = payload.as_bytes().to_vec();
        p[i] = if p[i] == b'A' { b'B' } else { b'A' };
        let t = format!(
            "{}.{}.{}",
            parts[0],
            String::from_utf8(p).unwrap(),
            parts[2]
        );
        assert!(
            verify_id_token(&t, &keys, ISSUER, "app", &l.req.nonce).is_err(),
            "payload changed at {i} was accepted"
        );
    }
    // A well-formed payload naming someone else is refused.
    let mut claims = fed::oauth::peek_claims(&id_token).unwrap();
    claims["sub"] = json!("member:someone-else");
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        b64url(claims.to_string().as_bytes()),
        parts[2]
    );
    assert!(verify_id_token(&forged, &keys, ISSUER, "app", &l.req.nonce).is_err());
    // alg=none with the signature dropped is refused.
    let none = format!("{}.{}.", b64url(br#"{"alg":"none","typ":"JWT"}"#), parts[1]);
    assert!(verify_id_token(&none, &keys, ISSUER, "app", &l.req.nonce).is_err());
    // Signed by another provider's key: refused.
    let other = Env::new(false);
    let foreign = other
        .p
        .key
        .sign(&fed::oauth::peek_claims(&id_token).unwrap())
        .unwrap();
    assert!(verify_id_token(&foreign, &keys, ISSUER, "app", &l.req.nonce).is_err());
    // Expired (beyond the leeway): refused; the same token unexpired: fine.
    let mut c = fed::oauth::peek_claims(&id_token).unwrap();
    c["exp"] = json!(store::now_ms() / 1000 - 3600);
    let expired = env.p.key.sign(&c).unwrap();
    assert!(verify_id_token(&expired, &keys, ISSUER, "app", &l.req.nonce).is_err());
    c["exp"] = json!(store::now_ms() / 1000 + 3600);
    let fresh = env.p.key.sign(&c).unwrap();
    verify_id_token(&fresh, &keys, ISSUER, "app", &l.req.nonce).unwrap();
    // A list audience naming us but authorized for another party.
    c["aud"] = json!(["app", "other"]);
    c["azp"] = json!("other");
    let multi = env.p.key.sign(&c).unwrap();
    assert!(verify_id_token(&multi, &keys, ISSUER, "app", &l.req.nonce).is_err());
});

both!(same_length_wrong_secrets_are_refused, |env| {
    let secret = env.register(client("app", true, false), true).unwrap();
    let (_, _, s) = env.signed_in("ann@example.org");
    let l = Login::new("app", "openid");
    let code = env.code(&l, &s);
    let redirect_uri = callback("app");
    let ok = |sec: &str| {
        form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &redirect_uri),
            ("code_verifier", &l.req.verifier),
            ("client_id", "app"),
            ("client_secret", sec),
        ])
    };
    // Differing in the first, a middle and the last character.
    for i in [0, secret.len() / 2, secret.len() - 1] {
        let mut b = secret.clone().into_bytes();
        b[i] = if b[i] == b'a' { b'b' } else { b'a' };
        let wrong = String::from_utf8(b).unwrap();
        assert_eq!(wrong.len(), secret.len());
        let e = oauth_err(env.p.token(&ok(&wrong), None), "invalid_client");
        assert_eq!(e.status, 401);
    }
    // A failed authentication does not spend the code.
    env.p.token(&ok(&secret), None).unwrap();
    assert!(fed::crypto::ct_eq(b"same", b"same"));
    assert!(!fed::crypto::ct_eq(b"same", b"samf"));
    assert!(!fed::crypto::ct_eq(b"same", b"same "));
});

both!(max_age_asks_for_a_recent_sign_in, |env| {
    env.register(client("app", true, false), false);
    let (_, _, s) = env.signed_in("ann@example.org");
    let l = Login::new("app", "openid");
    // Signed in an hour ago.
    let old = fed::accounts::Session {
        auth_time: s.auth_time - 3_600_000,
        ..s.clone()
    };
    let p = l.with("max_age", Some("600"));
    assert_eq!(
        env.p.authorize(&p, Some(&old), false).unwrap(),
        Authorize::Login
    );
    let mut none = p.clone();
    none.push(("prompt".into(), "none".into()));
    let url = redirect(env.p.authorize(&none, Some(&old), false).unwrap());
    assert_eq!(query(&url)["error"], "login_required");
    assert!(!query(&url).contains_key("code"));
    // Recent enough.
    let url = redirect(
        env.p
            .authorize(&l.with("max_age", Some("7200")), Some(&old), false)
            .unwrap(),
    );
    assert!(query(&url).contains_key("code"), "{url}");
    let url = redirect(env.p.authorize(&p, Some(&s), false).unwrap());
    assert!(query(&url).contains_key("code"), "{url}");
    for bad in ["-1", "ten", "1.5"] {
        let url = redirect(
            env.p
                .authorize(&l.with("max_age", Some(bad)), Some(&s), false)
                .unwrap(),
        );
        assert_eq!(query(&url)["error"], "invalid_request", "{bad}");
    }
});
