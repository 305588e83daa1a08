//! Member accounts: sign-up, sign-in, lockout, rate limits, email
//! verification, password reset, the outbox, sign-out.

use fed::FedError;
use fed::accounts::{MAX_FAILURES, MAX_PER_IP, ns};

use crate::both;
use crate::common::{Env, PASSWORD, query};

const WRONG: &str = "The email or password is not right.";

/// The token of the link `base/path?token=...` in a mail's text.
fn link_token(text: &str, path: &str) -> String {
    let start = format!("https://id.example.org{path}?token=");
    let at = text
        .find(&start)
        .unwrap_or_else(|| panic!("no {start} link in {text:?}"));
    let link = text[at..].split_whitespace().next().unwrap();
    query(link)["token"].clone()
}

/// Nothing of an account exists: no member, no email, no password, no
/// mail.
fn nothing_written(env: &Env) {
    assert!(env.accounts().members().unwrap().is_empty());
    for namespace in [ns::EMAIL, ns::PASSWORD, ns::VERIFY, ns::MAIL] {
        assert!(env.list(namespace).is_empty(), "{namespace} was written");
    }
}

both!(sign_up_first_member_is_admin, |env| {
    let a = env.member("Ann@Example.org");
    assert!(a.is_admin(), "the first member runs the cooperative");
    assert_eq!(a.email, "ann@example.org", "emails are stored lower-case");
    assert!(a.id.starts_with("member:"));
    assert!(!a.verified);
    let b = env.member("bob@example.org");
    assert!(!b.is_admin(), "only the first member becomes admin");
    assert!(b.roles.is_empty());
    assert_ne!(a.id, b.id);
    let found = env.accounts().member_by_email("ANN@example.ORG").unwrap();
    assert_eq!(found.as_ref().map(|m| &m.id), Some(&a.id));
    assert_eq!(env.accounts().member(&b.id).unwrap(), Some(b));
    assert_eq!(env.accounts().members().unwrap().len(), 2);
    // The password is a record holding an argon2id hash, not the password.
    let pw = env.record(ns::PASSWORD, &a.id);
    assert!(pw.value.starts_with("$argon2id$"), "{}", pw.value);
    assert!(!pw.value.contains(PASSWORD));
});

both!(sign_up_refuses_a_duplicate_email_in_any_case, |env| {
    let a = env.member("ann@example.org");
    for dup in ["ann@example.org", "ANN@EXAMPLE.ORG", "  Ann@Example.Org  "] {
        let m = invalid(env.accounts().sign_up(dup, "Impostor", "another password"));
        assert_eq!(m, "An account with this email already exists.");
    }
    let all = env.accounts().members().unwrap();
    assert_eq!(all, vec![a.clone()], "no second member was made");
    assert_eq!(
        env.accounts().outbox(100).unwrap().len(),
        1,
        "one mail only"
    );
    // The original password still works.
    let (_, s) = env
        .accounts()
        .sign_in("ann@example.org", PASSWORD, "192.0.2.1")
        .unwrap();
    assert_eq!(s.member, a.id);
});

both!(sign_up_refuses_bad_input_and_writes_nothing, |env| {
    let acc = env.accounts();
    for bad in [
        "",
        "ann",
        "ann@",
        "@example.org",
        "ann@example",
        "ann@.example.org",
        "ann@example.org.",
        "ann@@example.org",
        "ann smith@example.org",
        "<ann@example.org>",
        "ann@exa\u{0}mple.org",
    ] {
        let m = invalid(acc.sign_up(bad, "Ann", PASSWORD));
        assert_eq!(
            m, "Enter an email address like name@example.org.",
            "{bad:?}"
        );
    }
    let long_email = format!("{}@example.org", "a".repeat(250));
    invalid(acc.sign_up(&long_email, "Ann", PASSWORD));
    for short in ["", "1234567", "ééééééé"] {
        let m = invalid(acc.sign_up("ann@example.org", "Ann", short));
        assert_eq!(
            m, "The password must have at least 8 characters.",
            "{short:?}"
        );
    }
    let huge = "x".repeat(fed::password::MAX_LEN + 1);
    assert!(invalid(acc.sign_up("ann@example.org", "Ann", &huge)).contains("at most"));
    let long_name = "n".repeat(101);
    for name in ["", "   ", "Ann\u{7}", "Ann\nSmith", long_name.as_str()] {
        let m = invalid(acc.sign_up("ann@example.org", name, PASSWORD));
        assert_eq!(m, "Enter a name of 1 to 100 characters.", "{name:?}");
    }
    nothing_written(env);
    // Nothing was written, so the next valid sign-up is still the first.
    assert!(env.member("ann@example.org").is_admin());
});

both!(sign_in_right_and_wrong_password, |env| {
    let m = env.member("ann@example.org");
    let acc = env.accounts();
    let (token, s) = acc
        .sign_in("Ann@Example.org", PASSWORD, "192.0.2.1")
        .unwrap();
    assert_eq!(s.member, m.id);
    assert_eq!(token.len(), 43);
    assert_eq!(acc.session(&token).unwrap(), Some(s.clone()));
    // The session is stored under the token's hash, never the token.
    assert!(env.list(ns::SESSION).iter().all(|r| r.key != token));
    let wrong = acc.sign_in("ann@example.org", "correct horse batterY", "192.0.2.1");
    assert_eq!(invalid(wrong), WRONG);
    let (t2, s2) = acc
        .sign_in("ann@example.org", PASSWORD, "192.0.2.1")
        .unwrap();
    assert_ne!(t2, token, "every sign-in opens its own session");
    assert_ne!(s2.sid, s.sid);
    assert_eq!(acc.session("not a session").unwrap(), None);
    assert_eq!(acc.session("").unwrap(), None);
});

both!(unknown_email_and_wrong_password_look_the_same, |env| {
    env.member("ann@example.org");
    let acc = env.accounts();
    let time = |email: &str, pass: &str| {
        let t = std::time::Instant::now();
        let r = acc.sign_in(email, pass, "192.0.2.1");
        (t.elapsed(), r.unwrap_err())
    };
    let mut unknown = Vec::new();
    let mut wrong = Vec::new();
    for _ in 0..3 {
        unknown.push(time("nobody@example.org", PASSWORD));
        wrong.push(time("ann@example.org", "not the password"));
    }
    for (_, e) in unknown.iter().chain(&wrong) {
        assert!(matches!(e, FedError::Invalid(_)), "{e:?}");
        assert_eq!(e.to_string(), WRONG);
    }
    // An unknown email still costs a password hash, so response time
    // does not tell which emails have accounts (a hash takes tens of
    // milliseconds; skipping it takes about one).
    let slowest_unknown = unknown.iter().map(|(t, _)| *t).max().unwrap();
    let fastest_wrong = wrong.iter().map(|(t, _)| *t).min().unwrap();
    assert!(
        slowest_unknown * 4 >= fastest_wrong,
        "unknown email answered in {slowest_unknown:?}, wrong password in {fastest_wrong:?}"
    );
});

both!(lockout_after_max_failures, |env| {
    let m = env.member("ann@example.org");
    env.member("bob@example.org");
    let acc = env.accounts();
    // One failure short of the limit, then the right password: it works
    // and clears the count.
    for _ in 1..MAX_FAILURES {
        assert_eq!(
            invalid(acc.sign_in("ann@example.org", "wrong password", "192.0.2.1")),
            WRONG
        );
    }
    acc.sign_in("ann@example.org", PASSWORD, "192.0.2.1")
        .unwrap();
    for _ in 1..MAX_FAILURES {
        invalid(acc.sign_in("ann@example.org", "wrong password", "192.0.2.2"));
    }
    acc.sign_in("ann@example.org", PASSWORD, "192.0.2.1")
        .unwrap();
    // MAX_FAILURES failures, counted for the email in any case and from
    // any address, lock it.
    for i in 0..MAX_FAILURES {
        let email = if i % 2 == 0 {
            "ann@example.org"
        } else {
            "ANN@example.org"
        };
        let ip = format!("198.51.100.{i}");
        assert_eq!(invalid(acc.sign_in(email, "wrong password", &ip)), WRONG);
    }
    for email in ["ann@example.org", "Ann@Example.Org"] {
        match acc.sign_in(email, PASSWORD, "203.0.113.9") {
            Err(FedError::RateLimited { retry_after }) => {
                assert!((1..=fed::accounts::LOCK_WINDOW / 1000).contains(&retry_after));
            }
            other => panic!("the right password got in while locked: {other:?}"),
        }
    }
    // Another member is not affected.
    acc.sign_in("bob@example.org", PASSWORD, "203.0.113.9")
        .unwrap();
    // A password reset clears the lock.
    acc.request_reset("ann@example.org").unwrap();
    let token = env.mail_token("/reset");
    assert_eq!(
        acc.reset_password(&token, "a new password").unwrap().id,
        m.id
    );
    acc.sign_in("ann@example.org", "a new password", "203.0.113.9")
        .unwrap();
});

both!(per_address_limit, |env| {
    env.member("ann@example.org");
    env.member("bob@example.org");
    let acc = env.accounts();
    let ip = "203.0.113.7";
    // Malformed emails count against the address, as do wrong passwords.
    for i in 0..MAX_PER_IP - 1 {
        let email = format!("not-an-email-{i}");
        assert_eq!(invalid(acc.sign_in(&email, PASSWORD, ip)), WRONG);
    }
    assert_eq!(
        invalid(acc.sign_in("bob@example.org", "wrong password", ip)),
        WRONG
    );
    // Now even the right password for an unlocked account is refused
    // from that address...
    match acc.sign_in("ann@example.org", PASSWORD, ip) {
        Err(FedError::RateLimited { retry_after }) => assert!(retry_after >= 1),
        other => panic!(
            "attempt {} from one address was let through: {other:?}",
            MAX_PER_IP + 1
        ),
    }
    // ...but not from another.
    acc.sign_in("ann@example.org", PASSWORD, "203.0.113.8")
        .unwrap();
    // An empty address is counted too (as "unknown"), not exempt.
    for i in 0..MAX_PER_IP {
        invalid(acc.sign_in(&format!("bad-{i}"), PASSWORD, ""));
    }
    assert!(matches!(
        acc.sign_in("ann@example.org", PASSWORD, ""),
        Err(FedError::RateLimited { .. })
    ));
});

both!(verification_mail_and_single_use_token, |env| {
    let m = env.member("ann@example.org");
    let acc = env.accounts();
    let mails = acc.outbox(100).unwrap();
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert_eq!(mail.to, "ann@example.org");
    assert_eq!(mail.subject, "Confirm your email address");
    let token = link_token(&mail.text, "/verify");
    // The token is stored only as its hash.
    assert!(
        env.list(ns::VERIFY)
            .iter()
            .all(|r| r.key != token && !r.value.contains(&token))
    );
    assert!(invalid(acc.verify_email("wrong-token")).contains("not valid"));
    assert!(invalid(acc.verify_email("")).contains("not valid"));
    assert!(!acc.member(&m.id).unwrap().unwrap().verified);
    let v = acc.verify_email(&token).unwrap();
    assert!(v.verified);
    assert_eq!(v.id, m.id);
    assert!(acc.member(&m.id).unwrap().unwrap().verified);
    let again = invalid(acc.verify_email(&token));
    assert_eq!(
        again,
        "This verification link is not valid: it was used already or has expired."
    );
    // Sending a mail takes it out of the outbox.
    acc.mail_sent(&mail.key).unwrap();
    assert!(acc.outbox(100).unwrap().is_empty());
});

both!(reset_request_for_unknown_email_is_silent, |env| {
    env.member("ann@example.org");
    let acc = env.accounts();
    let before = acc.outbox(100).unwrap();
    acc.request_reset("nobody@example.org").unwrap();
    acc.request_reset("not an email").unwrap();
    acc.request_reset("").unwrap();
    assert_eq!(
        acc.outbox(100).unwrap(),
        before,
        "no mail for unknown emails"
    );
    assert!(env.list(ns::RESET).is_empty());
    // A known email in another case does get one.
    acc.request_reset("ANN@example.org").unwrap();
    let mails = acc.outbox(100).unwrap();
    assert_eq!(mails.len(), before.len() + 1);
    let mail = mails.iter().find(|m| !before.contains(m)).unwrap();
    assert_eq!(mail.to, "ann@example.org");
    assert_eq!(mail.subject, "Reset your password");
});

both!(password_reset, |env| {
    let (m, t1, _) = env.signed_in("ann@example.org");
    let acc = env.accounts();
    let (t2, _) = acc
        .sign_in("ann@example.org", PASSWORD, "192.0.2.9")
        .unwrap();
    let (_, bob_token, _) = env.signed_in("bob@example.org");
    acc.request_reset("ann@example.org").unwrap();
    let mail = acc.outbox(100).unwrap();
    let mail = mail
        .iter()
        .find(|m| m.subject == "Reset your password")
        .unwrap();
    assert_eq!(mail.to, "ann@example.org");
    let token = link_token(&mail.text, "/reset");
    assert_eq!(token, env.mail_token("/reset"));
    assert!(acc.reset_token_live(&token).unwrap());
    assert!(!acc.reset_token_live("unknown").unwrap());
    assert!(env.list(ns::RESET).iter().all(|r| r.key != token));
    // A too-short new password is refused and does not spend the token.
    assert!(invalid(acc.reset_password(&token, "short")).contains("at least"));
    assert!(acc.reset_token_live(&token).unwrap());
    let unknown = invalid(acc.reset_password("unknown-token", "a new password"));
    assert_eq!(
        unknown,
        "This reset link is not valid: it was used already or has expired."
    );
    let r = acc.reset_password(&token, "a new password").unwrap();
    assert_eq!(r.id, m.id);
    // Single use.
    assert!(!acc.reset_token_live(&token).unwrap());
    assert!(invalid(acc.reset_password(&token, "yet another password")).contains("not valid"));
    // The old password stops working, the new one works.
    assert_eq!(
        invalid(acc.sign_in("ann@example.org", PASSWORD, "192.0.2.1")),
        WRONG
    );
    let (_, s) = acc
        .sign_in("ann@example.org", "a new password", "192.0.2.1")
        .unwrap();
    assert_eq!(s.member, m.id);
    // Every provider session opened before the reset has ended; another
    // member's has not.
    assert_eq!(acc.session(&t1).unwrap(), None);
    assert_eq!(acc.session(&t2).unwrap(), None);
    assert!(acc.session(&bob_token).unwrap().is_some());
});

both!(change_password_needs_the_old_one, |env| {
    let m = env.member("ann@example.org");
    let acc = env.accounts();
    let bad = invalid(acc.change_password(&m.id, "not the password", "a new password"));
    assert_eq!(bad, "The current password is not right.");
    invalid(acc.change_password(&m.id, PASSWORD, "short"));
    acc.sign_in("ann@example.org", PASSWORD, "192.0.2.1")
        .unwrap();
    acc.change_password(&m.id, PASSWORD, "a new password")
        .unwrap();
    invalid(acc.sign_in("ann@example.org", PASSWORD, "192.0.2.1"));
    acc.sign_in("ann@example.org", "a new password", "192.0.2.1")
        .unwrap();
});

both!(sign_out_ends_a_session, |env| {
    let (_, token, s) = env.signed_in("ann@example.org");
    let acc = env.accounts();
    let (other, _) = acc
        .sign_in("ann@example.org", PASSWORD, "192.0.2.1")
        .unwrap();
    assert_eq!(acc.session(&token).unwrap(), Some(s.clone()));
    assert_eq!(acc.sign_out(&token).unwrap(), Some(s));
    assert_eq!(acc.session(&token).unwrap(), None);
    assert_eq!(acc.sign_out(&token).unwrap(), None, "already ended");
    assert_eq!(acc.sign_out("").unwrap(), None);
    assert!(
        acc.session(&other).unwrap().is_some(),
        "only that session ended"
    );
});

both!(roles_and_names, |env| {
    let m = env.member("ann@example.org");
    let acc = env.accounts();
    let m2 = acc.set_role(&m.id, "editor", true).unwrap();
    assert_eq!(m2.roles, vec!["admin".to_owned(), "editor".to_owned()]);
    assert_eq!(acc.member(&m.id).unwrap().unwrap().roles, m2.roles);
    let m3 = acc.set_role(&m.id, "admin", false).unwrap();
    assert!(!m3.is_admin());
    for bad in ["", "Admin", "ad min", "x;y"] {
        invalid(acc.set_role(&m.id, bad, true));
    }
    assert_eq!(acc.rename(&m.id, "  Ann B  ").unwrap().name, "Ann B");
    invalid(acc.rename(&m.id, " "));
    invalid(acc.set_role("member:nobody", "editor", true));
});

use crate::common::invalid;

both!(password_reset_revokes_the_apps_tokens, |env| {
    use crate::common::{Login, client, field};
    let secret = env.register(client("app", true, false), true);
    let (_, _, s) = env.signed_in("ann@example.org");
    let tokens = env.tokens(&Login::new("app", "openid"), &s, secret.as_deref());
    let access = field(&tokens, "access_token");
    assert!(env.userinfo(&access).is_ok());
    let acc = env.accounts();
    acc.request_reset("ann@example.org").unwrap();
    let token = env.mail_token("/reset");
    acc.reset_password(&token, "a new password").unwrap();
    // Whoever held the old password also held the app's tokens: gone.
    assert!(
        env.userinfo(&access).is_err(),
        "the access token outlived the reset"
    );
    assert!(
        env.list(fed::oauth::ns::REFRESH).is_empty(),
        "the refresh token outlived the reset"
    );
});

both!(reset_mails_and_sign_ups_are_limited, |env| {
    use fed::accounts::{MAX_RESETS_PER_EMAIL, MAX_SIGN_UPS_PER_IP};
    env.member("ann@example.org");
    let acc = env.accounts();
    let before = acc.outbox(100).unwrap().len();
    for _ in 0..MAX_RESETS_PER_EMAIL + 3 {
        acc.request_reset("ann@example.org").unwrap();
    }
    let resets = acc.outbox(100).unwrap().len() - before;
    assert_eq!(resets as i64, MAX_RESETS_PER_EMAIL, "no mailbox flooding");
    for _ in 0..MAX_SIGN_UPS_PER_IP {
        acc.limit_sign_ups("198.51.100.1").unwrap();
    }
    assert!(matches!(
        acc.limit_sign_ups("198.51.100.1"),
        Err(FedError::RateLimited { .. })
    ));
    acc.limit_sign_ups("198.51.100.2").unwrap();
});

both!(verification_mail_sent_again, |env| {
    let m = env.member("ann@example.org");
    let acc = env.accounts();
    assert!(acc.resend_verification(&m.id).unwrap());
    let mails = acc.outbox(100).unwrap();
    let links: Vec<_> = mails
        .iter()
        .filter(|x| x.subject == "Confirm your email address")
        .collect();
    assert_eq!(links.len(), 2, "the first mail and the one sent again");
    let token = link_token(&links[1].text, "/verify");
    assert!(acc.verify_email(&token).unwrap().verified);
    // Verified: nothing more is sent.
    assert!(!acc.resend_verification(&m.id).unwrap());
});
