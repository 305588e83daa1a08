//! Requests the provider must refuse, each with the right error.

use fed::OAuthError;
use fed::oauth::{Authorize, ns};

use crate::both;
use crate::common::*;

/// The error redirect an authorization outcome must be: to the
/// registered callback, with `error`, the request's `state` and `iss`,
/// and no code.
#[track_caller]
fn error_redirect(a: Authorize, l: &Login, code: &str) {
    let url = redirect(a);
    assert!(
        url.starts_with(&format!("{}?", callback(&l.client))),
        "{url}"
    );
    let q = query(&url);
    assert_eq!(q.get("error").map(String::as_str), Some(code), "{url}");
    assert_eq!(q.get("state"), Some(&l.req.state), "{url}");
    assert_eq!(q.get("iss").map(String::as_str), Some(ISSUER), "{url}");
    assert!(!q.contains_key("code"), "{url}");
}

#[track_caller]
fn refused(a: Authorize) {
    assert!(
        matches!(a, Authorize::Refuse(_)),
        "expected a refusal, got {a:?}"
    );
}

both!(pkce_is_required_s256_only, |env| {
    env.register(client("app", true, false), false);
    let (_, _, s) = env.signed_in("ann@example.org");
    let l = Login::new("app", "openid");
    let plain_challenge = l.req.verifier.clone();
    let cases: Vec<Vec<(String, String)>> = vec![
        l.with("code_challenge", None),
        l.with("code_challenge", Some("")),
        l.with("code_challenge", Some("too-short")),
        l.with("code_challenge", Some(&"!".repeat(43))),
        l.with("code_challenge_method", None),
        l.with("code_challenge_method", Some("plain")),
        l.with("code_challenge_method", Some("s256")),
        {
            let mut p = l.with("code_challenge_method", Some("plain"));
            p.retain(|(k, _)| k != "code_challenge");
            p.push(("code_challenge".into(), plain_challenge));
            p
        },
    ];
    for params in cases {
        for session in [Some(&s), None] {
            let a = env.p.authorize(&params, session, false).unwrap();
            error_redirect(a, &l, "invalid_request");
        }
    }
    // The unchanged request gets a code.
    env.code(&l, &s);
});

both!(verifier_missing_or_wrong, |env| {
    env.register(client("app", true, false), false);
    let (_, _, s) = env.signed_in("ann@example.org");
    let cb = callback("app");
    // Missing.
    let l = Login::new("app", "openid");
    let code = env.code(&l, &s);
    oauth_err(
        env.exchange("app", None, &code, None, Some(&cb)),
        "invalid_grant",
    );
    // Wrong, though well formed (another login's verifier).
    let l = Login::new("app", "openid");
    let other = Login::new("app", "openid");
    let code = env.code(&l, &s);
    let e = oauth_err(
        env.exchange("app", None, &code, Some(&other.req.verifier), Some(&cb)),
        "invalid_grant",
    );
    assert_eq!(e.status, 400);
    // The challenge itself is not the verifier.
    let l = Login::new("app", "openid");
    let code = env.code(&l, &s);
    let challenge = fed::crypto::pkce_challenge(&l.req.verifier);
    oauth_err(
        env.exchange("app", None, &code, Some(&challenge), Some(&cb)),
        "invalid_grant",
    );
    // A failed attempt spends the code: no guessing verifiers.
    oauth_err(
        env.exchange("app", None, &code, Some(&l.req.verifier), Some(&cb)),
        "invalid_grant",
    );
    assert!(env.list(ns::ACCESS).is_empty(), "no token was issued");
});

both!(replayed_code_revokes_the_first_tokens, |env| {
    let secret = env.register(client("app", true, false), true).unwrap();
    let (_, _, s) = env.signed_in("ann@example.org");
    let l = Login::new("app", "openid");
    let cb = callback("app");
    let code = env.code(&l, &s);
    let first = env
        .exchange(
            "app",
            Some(&secret),
            &code,
            Some(&l.req.verifier),
            Some(&cb),
        )
        .unwrap();
    let (access, refresh) = (
        field(&first, "access_token"),
        field(&first, "refresh_token"),
    );
    env.userinfo(&access).unwrap();
    let e = oauth_err(
        env.exchange(
            "app",
            Some(&secret),
            &code,
            Some(&l.req.verifier),
            Some(&cb),
        ),
        "invalid_grant",
    );
    assert_eq!(e.status, 400);
    oauth_err(env.userinfo(&access), "invalid_token");
    assert_eq!(env.introspect("app", &secret, &access)["active"], false);
    oauth_err(
        env.refresh("app", Some(&secret), &refresh, None),
        "invalid_grant",
    );
    // Other grants survive.
    let other = env.tokens(&Login::new("app", "openid"), &s, Some(&secret));
    env.userinfo(&field(&other, "access_token")).unwrap();
});

both!(
    unregistered_redirect_uri_is_refused_never_redirected,
    |env| {
        let mut c = client("app", false, false);
        c.redirect_uris
            .push("https://app.example.org/other?x=1".into());
        env.register(c, false);
        env.register(client("evil", true, false), false);
        let (_, _, s) = env.signed_in("ann@example.org");
        let l = Login::new("app", "openid");
        let registered = callback("app");
        let variants = [
            format!("{registered}/"),
            format!("{registered}x"),
            format!("{registered}?next=https://evil.example"),
            format!("{registered}#x"),
            registered[..registered.len() - 1].to_owned(),
            "https://app.example.org/".to_owned(),
            "https://app.example.org.evil.example/callback".to_owned(),
            "https://evil.example/callback".to_owned(),
            "http://app.example.org/callback".to_owned(),
            "HTTPS://APP.EXAMPLE.ORG/callback".to_owned(),
            "https://app.example.org/other".to_owned(),
            "https://app.example.org/other?x=1&y=2".to_owned(),
            callback("evil"),
            " ".to_owned() + &registered,
            String::new(),
        ];
        for bad in &variants {
            let params = l.with("redirect_uri", Some(bad));
            for session in [Some(&s), None] {
                refused(env.p.authorize(&params, session, false).unwrap());
            }
            // Also when the request has other errors that would otherwise be
            // sent back to the client, and on the consent form's answer.
            let mut worse = params.clone();
            worse.retain(|(k, _)| k != "code_challenge");
            worse.push(("scope".into(), "admin".into()));
            refused(env.p.authorize(&worse, Some(&s), false).unwrap());
            refused(env.p.consent(&params, &s, true).unwrap());
            refused(env.p.consent(&params, &s, false).unwrap());
        }
        refused(
            env.p
                .authorize(&l.with("redirect_uri", None), Some(&s), false)
                .unwrap(),
        );
        // Two redirect URIs, one of them registered.
        let mut two = l.params.clone();
        two.push(("redirect_uri".into(), "https://evil.example/cb".into()));
        refused(env.p.authorize(&two, Some(&s), false).unwrap());
        // An unknown or missing client.
        refused(
            env.p
                .authorize(&l.with("client_id", Some("nobody")), Some(&s), false)
                .unwrap(),
        );
        refused(
            env.p
                .authorize(&l.with("client_id", None), Some(&s), false)
                .unwrap(),
        );
        // The other registered URI, query and all, is fine.
        let ok = l.with("redirect_uri", Some("https://app.example.org/other?x=1"));
        let url = redirect(env.p.consent(&ok, &s, true).unwrap());
        assert!(
            url.starts_with("https://app.example.org/other?x=1&code="),
            "{url}"
        );
    }
);

both!(redirect_uri_must_match_at_the_token_endpoint, |env| {
    let mut c = client("app", true, false);
    c.redirect_uris
        .push("https://app.example.org/second".into());
    env.register(c, false);
    let (_, _, s) = env.signed_in("ann@example.org");
    for given in [
        Some("https://app.example.org/second"),
        Some("https://app.example.org/callback/"),
        None,
    ] {
        let l = Login::new("app", "openid");
        let code = env.code(&l, &s);
        let e = oauth_err(
            env.exchange("app", None, &code, Some(&l.req.verifier), given),
            "invalid_grant",
        );
        assert!(e.description.contains("redirect_uri"), "{e:?}");
    }
});

both!(code_of_client_a_is_useless_to_client_b, |env| {
    env.register(client("a", true, false), false);
    let b_secret = env.register(client("b", true, false), true).unwrap();
    let (_, _, s) = env.signed_in("ann@example.org");
    let l = Login::new("a", "openid");
    let code = env.code(&l, &s);
    // B authenticates properly, and even names A's redirect URI.
    let e = oauth_err(
        env.exchange(
            "b",
            Some(&b_secret),
            &code,
            Some(&l.req.verifier),
            Some(&callback("a")),
        ),
        "invalid_grant",
    );
    assert_eq!(e.status, 400);
    let e = oauth_err(
        env.exchange(
            "b",
            Some(&b_secret),
            &env.code(&Login::new("a", "openid"), &s),
            Some(&l.req.verifier),
            Some(&callback("b")),
        ),
        "invalid_grant",
    );
    assert_eq!(e.status, 400);
    assert!(env.list(ns::ACCESS).is_empty(), "no token was issued");
});

both!(client_authentication_failures, |env| {
    let secret = env.register(client("app", true, false), true).unwrap();
    env.register(client("pub", true, false), false);
    let (_, _, s) = env.signed_in("ann@example.org");
    let l = Login::new("app", "openid");
    let code = env.code(&l, &s);
    let cb = callback("app");
    let grant = |extra: &[(&str, &str)]| {
        let mut f = form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &cb),
            ("code_verifier", &l.req.verifier),
        ]);
        f.extend(form(extra));
        f
    };
    let invalid_client = |r: Result<serde_json::Value, OAuthError>| {
        let e = oauth_err(r, "invalid_client");
        assert_eq!(e.status, 401);
    };
    // Wrong secret, by post and by basic.
    invalid_client(env.p.token(
        &grant(&[("client_id", "app"), ("client_secret", "wrong")]),
        None,
    ));
    invalid_client(env.p.token(&grant(&[]), Some(&basic("app", "wrong"))));
    invalid_client(env.p.token(&grant(&[]), Some(&basic("app", ""))));
    // A confidential client without its secret.
    invalid_client(env.p.token(&grant(&[("client_id", "app")]), None));
    // Another client's id with this secret; an unknown client.
    invalid_client(env.p.token(&grant(&[]), Some(&basic("pub", &secret))));
    invalid_client(env.p.token(&grant(&[("client_id", "nobody")]), None));
    invalid_client(env.p.token(&grant(&[]), Some(&basic("nobody", &secret))));
    invalid_client(env.p.token(&grant(&[]), None));
    // A secret for a public client.
    invalid_client(env.p.token(
        &grant(&[
            ("client_id", "pub"),
            ("client_secret", "x".repeat(43).as_str()),
        ]),
        None,
    ));
    // Malformed Basic headers.
    for h in ["Basic", "Basic !!!", "Basic YXBw", "Bearer abc"] {
        let r = env.p.token(&grant(&[]), Some(h));
        assert!(
            matches!(&r, Err(e) if e.code == "invalid_client" || e.code == "invalid_request"),
            "{h}: {r:?}"
        );
    }
    // Two methods at once.
    oauth_err(
        env.p.token(
            &grant(&[("client_secret", &secret)]),
            Some(&basic("app", &secret)),
        ),
        "invalid_request",
    );
    // None of that spent the code.
    env.p
        .token(&grant(&[]), Some(&basic("app", &secret)))
        .unwrap();
});

both!(unsupported_grant_types, |env| {
    let secret = env.register(client("app", true, false), true).unwrap();
    for g in [
        "password",
        "client_credentials",
        "implicit",
        "urn:ietf:params:oauth:grant-type:device_code",
    ] {
        let f = form(&[
            ("grant_type", g),
            ("username", "ann@example.org"),
            ("password", PASSWORD),
        ]);
        let e = oauth_err(
            env.p.token(&f, Some(&basic("app", &secret))),
            "unsupported_grant_type",
        );
        assert_eq!(e.status, 400);
    }
    oauth_err(
        env.p.token(&form(&[]), Some(&basic("app", &secret))),
        "invalid_request",
    );
    // Authorization: only response_type=code.
    env.register(client("pub", true, false), false);
    let l = Login::new("pub", "openid");
    for rt in ["token", "id_token", "code token"] {
        error_redirect(
            env.p
                .authorize(&l.with("response_type", Some(rt)), None, false)
                .unwrap(),
            &l,
            "unsupported_response_type",
        );
    }
    error_redirect(
        env.p
            .authorize(&l.with("response_type", None), None, false)
            .unwrap(),
        &l,
        "invalid_request",
    );
});

both!(duplicate_parameters, |env| {
    let secret = env.register(client("app", true, false), true).unwrap();
    let (_, _, s) = env.signed_in("ann@example.org");
    let l = Login::new("app", "openid");
    let cb = callback("app");
    for dup in [
        "scope",
        "code_challenge",
        "code_challenge_method",
        "response_type",
        "nonce",
        "prompt",
    ] {
        let mut p = l.params.clone();
        match p.iter().find(|(k, _)| k == dup).cloned() {
            Some(pair) => p.push(pair),
            None => {
                p.push((dup.to_owned(), "login".to_owned()));
                p.push((dup.to_owned(), "login".to_owned()));
            }
        }
        error_redirect(
            env.p.authorize(&p, Some(&s), false).unwrap(),
            &l,
            "invalid_request",
        );
    }
    // Two states: an error, sent back with the first.
    let mut p = l.params.clone();
    p.push(("state".into(), "second".into()));
    error_redirect(
        env.p.authorize(&p, Some(&s), false).unwrap(),
        &l,
        "invalid_request",
    );
    // Two client ids cannot be answered to at all.
    let mut p = l.params.clone();
    p.push(("client_id".into(), "app".into()));
    refused(env.p.authorize(&p, Some(&s), false).unwrap());
    // The token endpoint.
    let code = env.code(&l, &s);
    let base = form(&[
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", &cb),
        ("code_verifier", &l.req.verifier),
        ("client_id", "app"),
        ("client_secret", &secret),
    ]);
    for i in 0..base.len() {
        let mut f = base.clone();
        f.push(base[i].clone());
        oauth_err(env.p.token(&f, None), "invalid_request");
    }
    // Refresh and revocation too.
    let t = env.p.token(&base, None).unwrap();
    let r = field(&t, "refresh_token");
    let mut f = form(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", &r),
        ("refresh_token", &r),
    ]);
    oauth_err(
        env.p.token(&f, Some(&basic("app", &secret))),
        "invalid_request",
    );
    f.truncate(2);
    f.push(("scope".into(), "openid".into()));
    f.push(("scope".into(), "openid".into()));
    oauth_err(
        env.p.token(&f, Some(&basic("app", &secret))),
        "invalid_request",
    );
    let a = field(&t, "access_token");
    oauth_err(
        env.p.revoke(
            &form(&[("token", &a), ("token", &a)]),
            Some(&basic("app", &secret)),
        ),
        "invalid_request",
    );
    env.userinfo(&a).unwrap();
});

both!(prompt_none_without_a_session, |env| {
    env.register(client("app", true, false), false);
    let l = Login::new("app", "openid");
    let a = env
        .p
        .authorize(&l.with("prompt", Some("none")), None, false)
        .unwrap();
    error_redirect(a, &l, "login_required");
    let (_, _, s) = env.signed_in("ann@example.org");
    // With a session it works silently...
    let url = redirect(
        env.p
            .authorize(&l.with("prompt", Some("none")), Some(&s), false)
            .unwrap(),
    );
    assert!(query(&url).contains_key("code"), "{url}");
    // ...and "none" must stand alone.
    let a = env
        .p
        .authorize(&l.with("prompt", Some("none login")), Some(&s), false)
        .unwrap();
    error_redirect(a, &l, "invalid_request");
});

both!(unknown_scope, |env| {
    env.register(client("app", true, false), false);
    let (_, _, s) = env.signed_in("ann@example.org");
    for scope in [
        "admin",
        "openid admin",
        "openid profile email offline_access write",
    ] {
        let l = Login::new("app", scope);
        error_redirect(
            env.p.authorize(&l.params, Some(&s), false).unwrap(),
            &l,
            "invalid_scope",
        );
    }
    // The known ones are all fine.
    let l = Login::new("app", "openid profile email offline_access");
    env.code(&l, &s);
});

both!(
    non_ascii_authorization_header_is_an_error_not_a_panic,
    |env| {
        env.register(client("app", true, false), false);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            env.p.userinfo(Some("Bearer\u{e9}abcdef"))
        }));
        assert!(
            matches!(&r, Ok(Err(e)) if e.code == "invalid_token"),
            "userinfo panicked or accepted: {r:?}"
        );
        let f = form(&[("grant_type", "refresh_token"), ("refresh_token", "x")]);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            env.p.token(&f, Some("Basic\u{e9}abcdef"))
        }));
        assert!(
            matches!(&r, Ok(Err(e)) if e.code == "invalid_client"),
            "the token endpoint panicked or accepted: {r:?}"
        );
    }
);
