//! Logout: RP-initiated logout redirects and back-channel logout tokens.

use fed::rp::verify_logout_token;
use serde_json::json;

use crate::both;
use crate::common::*;

both!(post_logout_redirect_only_to_registered_uris, |env| {
    env.register(client("app", true, false), false);
    env.register(client("other", true, false), false);
    let (_, _, s) = env.signed_in("ann@example.org");
    let id_token = field(
        &env.tokens(&Login::new("app", "openid"), &s, None),
        "id_token",
    );
    let bye = "https://app.example.org/bye";
    let go = |pairs: &[(&str, &str)]| env.p.post_logout_redirect(&form(pairs)).unwrap();
    assert_eq!(
        go(&[
            ("post_logout_redirect_uri", bye),
            ("id_token_hint", &id_token),
            ("state", "s 1")
        ]),
        Some(format!("{bye}?state=s+1"))
    );
    assert_eq!(
        go(&[
            ("post_logout_redirect_uri", bye),
            ("id_token_hint", &id_token)
        ]),
        Some(bye.to_owned())
    );
    // No open redirect: unregistered, prefix/suffix variants, another
    // client's URI.
    for uri in [
        "https://evil.example/",
        "https://app.example.org/bye/",
        "https://app.example.org/by",
        "https://app.example.org/bye?x=https://evil.example",
        "https://app.example.org.evil.example/bye",
        "https://app.example.org/callback",
        "https://other.example.org/bye",
    ] {
        assert_eq!(
            go(&[
                ("post_logout_redirect_uri", uri),
                ("id_token_hint", &id_token)
            ]),
            None,
            "{uri}"
        );
    }
    // Without proof of the client: nowhere.
    assert_eq!(go(&[("post_logout_redirect_uri", bye)]), None);
    let mut parts: Vec<String> = id_token.split('.').map(str::to_owned).collect();
    let mut claims = fed::oauth::peek_claims(&id_token).unwrap();
    claims["aud"] = json!("other");
    parts[1] = fed::crypto::b64url(claims.to_string().as_bytes());
    let tampered = parts.join(".");
    assert_eq!(
        go(&[
            ("post_logout_redirect_uri", "https://other.example.org/bye"),
            ("id_token_hint", &tampered)
        ]),
        None,
        "a tampered hint proves nothing"
    );
    assert_eq!(
        go(&[
            ("post_logout_redirect_uri", bye),
            ("id_token_hint", &tampered)
        ]),
        None
    );
    // A hint signed by another provider.
    let elsewhere = Env::new(false);
    let foreign = elsewhere
        .p
        .key
        .sign(&fed::oauth::peek_claims(&id_token).unwrap())
        .unwrap();
    assert_eq!(
        go(&[
            ("post_logout_redirect_uri", bye),
            ("id_token_hint", &foreign)
        ]),
        None
    );
    // Nothing asked for, nothing given.
    assert_eq!(go(&[("id_token_hint", &id_token)]), None);
    // The hint is checked against our issuer.
    let mut c = fed::oauth::peek_claims(&id_token).unwrap();
    c["iss"] = json!("https://evil.example");
    let wrong_iss = env.p.key.sign(&c).unwrap();
    assert!(env.p.id_token_client(&wrong_iss).is_none());
    assert_eq!(
        env.p.id_token_client(&id_token).map(|(aud, _)| aud),
        Some("app".into())
    );
});

both!(logout_everywhere_notifies_each_app_of_the_session, |env| {
    for (id, bc) in [("a", true), ("b", false), ("c", true), ("d", true)] {
        env.register(client(id, true, bc), false);
    }
    let (m, cookie, s1) = env.signed_in("ann@example.org");
    let (_, s2) = env
        .accounts()
        .sign_in("ann@example.org", PASSWORD, "192.0.2.1")
        .unwrap();
    for id in ["a", "b", "c"] {
        env.tokens(&Login::new(id, "openid"), &s1, None);
    }
    // Twice to the same app still means one notice.
    env.tokens(&Login::new("a", "openid"), &s1, None);
    env.tokens(&Login::new("d", "openid"), &s2, None);
    let ended = env.accounts().sign_out(&cookie).unwrap().unwrap();
    assert_eq!(ended, s1);
    let notices = env.p.logout_everywhere(&ended).unwrap();
    let mut uris: Vec<&str> = notices.iter().map(|n| n.uri.as_str()).collect();
    uris.sort_unstable();
    assert_eq!(
        uris,
        vec![
            "https://a.example.org/backchannel-logout",
            "https://c.example.org/backchannel-logout",
        ]
    );
    let keys = env.keys();
    for n in &notices {
        let me = if n.uri.starts_with("https://a.") {
            "a"
        } else {
            "c"
        };
        let other = if me == "a" { "c" } else { "a" };
        let (sid, sub) = verify_logout_token(&n.logout_token, &keys, ISSUER, me).unwrap();
        assert_eq!(sid.as_deref(), Some(s1.sid.as_str()));
        assert_eq!(sub.as_deref(), Some(m.id.as_str()));
        assert!(verify_logout_token(&n.logout_token, &keys, ISSUER, other).is_err());
        assert!(verify_logout_token(&n.logout_token, &keys, ISSUER, "d").is_err());
        assert!(verify_logout_token(&n.logout_token, &keys, "https://evil.example", me).is_err());
        let elsewhere = Env::new(false);
        assert!(verify_logout_token(&n.logout_token, &elsewhere.keys(), ISSUER, me).is_err());
        // A logout token is no ID token.
        let c = fed::oauth::peek_claims(&n.logout_token).unwrap();
        assert!(c.get("nonce").is_none());
        assert!(fed::rp::verify_id_token(&n.logout_token, &keys, ISSUER, me, "").is_err());
    }
    // Already notified: nothing more to send. The other session's app is
    // untouched by this logout, and notified when that session ends.
    assert!(env.p.logout_everywhere(&ended).unwrap().is_empty());
    let n2 = env.p.logout_everywhere(&s2).unwrap();
    assert_eq!(n2.len(), 1);
    assert_eq!(n2[0].uri, "https://d.example.org/backchannel-logout");
    // An ID token is not a logout token.
    let l = Login::new("a", "openid");
    let (_, _, s3) = env.signed_in("bob@example.org");
    let id_token = field(&env.tokens(&l, &s3, None), "id_token");
    assert!(verify_logout_token(&id_token, &keys, ISSUER, "a").is_err());
    // Forged logout tokens: a tampered one, one without the event, one
    // too old.
    let t = &notices[0].logout_token;
    let me = if notices[0].uri.starts_with("https://a.") {
        "a"
    } else {
        "c"
    };
    let mut claims = fed::oauth::peek_claims(t).unwrap();
    claims["sid"] = json!("another-session");
    let mut parts: Vec<String> = t.split('.').map(str::to_owned).collect();
    parts[1] = fed::crypto::b64url(claims.to_string().as_bytes());
    assert!(verify_logout_token(&parts.join("."), &keys, ISSUER, me).is_err());
    let mut c = fed::oauth::peek_claims(t).unwrap();
    c["events"] = json!({});
    assert!(verify_logout_token(&env.p.key.sign(&c).unwrap(), &keys, ISSUER, me).is_err());
    let mut c = fed::oauth::peek_claims(t).unwrap();
    c["iat"] = json!(store::now_ms() / 1000 - 3600);
    assert!(verify_logout_token(&env.p.key.sign(&c).unwrap(), &keys, ISSUER, me).is_err());
    let mut c = fed::oauth::peek_claims(t).unwrap();
    c["nonce"] = json!("n");
    assert!(verify_logout_token(&env.p.key.sign(&c).unwrap(), &keys, ISSUER, me).is_err());
});

both!(
    logout_everywhere_forgets_the_sessions_access_tokens,
    |env| {
        env.register(client("a", true, true), false);
        let (_, cookie, s) = env.signed_in("ann@example.org");
        let t = env.tokens(&Login::new("a", "openid"), &s, None);
        let access = field(&t, "access_token");
        env.userinfo(&access).unwrap();
        let ended = env.accounts().sign_out(&cookie).unwrap().unwrap();
        assert_eq!(env.p.logout_everywhere(&ended).unwrap().len(), 1);
        oauth_err(env.userinfo(&access), "invalid_token");
    }
);

both!(logout_hint_and_client_id_must_agree, |env| {
    env.register(client("app", true, false), false);
    env.register(client("other", true, false), false);
    let (_, _, s) = env.signed_in("ann@example.org");
    let id_token = field(
        &env.tokens(&Login::new("app", "openid"), &s, None),
        "id_token",
    );
    let bye = "https://app.example.org/bye";
    let go = |pairs: &[(&str, &str)]| env.p.post_logout_redirect(&form(pairs)).unwrap();
    // RP-Initiated Logout 1.0 §2: with both, the client ids MUST match.
    assert_eq!(
        go(&[
            ("post_logout_redirect_uri", bye),
            ("id_token_hint", &id_token),
            ("client_id", "other"),
        ]),
        None
    );
    // A hint that does not verify makes the request invalid; it is not
    // silently replaced by client_id.
    let bad_hint = format!("{}x", &id_token[..id_token.len() - 1]);
    assert_eq!(
        go(&[
            ("post_logout_redirect_uri", bye),
            ("id_token_hint", &bad_hint),
            ("client_id", "app"),
        ]),
        None
    );
});
