//! Expired tokens and codes, made by rewriting their records with an
//! expiry in the past (nobody waits an hour in a test).

use fed::accounts::ns as acc_ns;
use fed::crypto::token_key;
use fed::oauth::ns;

use crate::both;
use crate::common::*;

both!(expired_access_token_is_refused, |env| {
    let secret = env.register(client("app", true, false), true).unwrap();
    let (_, _, s) = env.signed_in("ann@example.org");
    let t = env.tokens(&Login::new("app", "openid"), &s, Some(&secret));
    let access = field(&t, "access_token");
    // It works while live.
    env.userinfo(&access).unwrap();
    assert_eq!(env.introspect("app", &secret, &access)["active"], true);
    // The access-token record: found by listing the namespace.
    let recs = env.list(ns::ACCESS);
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].key, token_key(&access));
    let live = recs[0].expires.unwrap() - store::now_ms();
    let ttl = fed::oauth::ACCESS_TTL_S * 1000;
    assert!(
        live > ttl - 60_000 && live <= ttl,
        "an access token lives an hour"
    );
    env.expire(ns::ACCESS, &recs[0].key);
    oauth_err(env.userinfo(&access), "invalid_token");
    assert_eq!(env.introspect("app", &secret, &access)["active"], false);
    // The refresh token is independent of it and still live.
    env.refresh("app", Some(&secret), &field(&t, "refresh_token"), None)
        .unwrap();
});

both!(expired_refresh_token_is_refused, |env| {
    let secret = env.register(client("app", true, false), true).unwrap();
    let (_, _, s) = env.signed_in("ann@example.org");
    let t = env.tokens(&Login::new("app", "openid"), &s, Some(&secret));
    let refresh = field(&t, "refresh_token");
    env.expire(ns::REFRESH, &token_key(&refresh));
    oauth_err(
        env.refresh("app", Some(&secret), &refresh, None),
        "invalid_grant",
    );
    assert_eq!(env.introspect("app", &secret, &refresh)["active"], false);
});

both!(expired_code_is_refused, |env| {
    env.register(client("app", true, false), false);
    let (_, _, s) = env.signed_in("ann@example.org");
    let l = Login::new("app", "openid");
    let code = env.code(&l, &s);
    let recs = env.list(ns::CODE);
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].key, token_key(&code));
    assert!(
        recs[0].expires.unwrap() - store::now_ms() <= 600_000,
        "codes are short-lived"
    );
    env.expire(ns::CODE, &token_key(&code));
    oauth_err(
        env.exchange(
            "app",
            None,
            &code,
            Some(&l.req.verifier),
            Some(&callback("app")),
        ),
        "invalid_grant",
    );
    assert!(env.list(ns::ACCESS).is_empty());
    // A live code from the same session still works.
    env.tokens(&Login::new("app", "openid"), &s, None);
});

both!(expired_reset_token_is_refused, |env| {
    env.member("ann@example.org");
    let acc = env.accounts();
    acc.request_reset("ann@example.org").unwrap();
    let token = env.mail_token("/reset");
    assert!(acc.reset_token_live(&token).unwrap());
    let recs = env.list(acc_ns::RESET);
    assert_eq!(recs.len(), 1);
    assert!(
        recs[0].expires.unwrap() - store::now_ms() <= 3_600_000,
        "an hour at most"
    );
    env.expire(acc_ns::RESET, &token_key(&token));
    assert!(!acc.reset_token_live(&token).unwrap());
    invalid(acc.reset_password(&token, "a new password"));
    // The password did not change.
    acc.sign_in("ann@example.org", PASSWORD, "192.0.2.1")
        .unwrap();
});

both!(expired_verification_token_and_session_are_refused, |env| {
    let m = env.member("ann@example.org");
    let acc = env.accounts();
    let token = env.mail_token("/verify");
    env.expire(acc_ns::VERIFY, &token_key(&token));
    invalid(acc.verify_email(&token));
    assert!(!acc.member(&m.id).unwrap().unwrap().verified);
    let (cookie, _) = acc
        .sign_in("ann@example.org", PASSWORD, "192.0.2.1")
        .unwrap();
    assert!(acc.session(&cookie).unwrap().is_some());
    env.expire(acc_ns::SESSION, &token_key(&cookie));
    assert_eq!(acc.session(&cookie).unwrap(), None);
    assert_eq!(acc.sign_out(&cookie).unwrap(), None);
});
