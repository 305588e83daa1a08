//! Single-use things stay single-use, and limits hold, when requests
//! race (threads over one store: SQLite serializes writers, PostgreSQL
//! runs them at once).

use fed::FedError;
use fed::accounts::MAX_FAILURES;

use crate::both;
use crate::common::*;

const THREADS: usize = 8;

/// Runs `f(i)` on `n` threads at once and collects the results.
fn race<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let barrier = std::sync::Barrier::new(n);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let (f, barrier) = (&f, &barrier);
                s.spawn(move || {
                    barrier.wait();
                    f(i)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

both!(one_sign_up_per_email_under_a_race, |env| {
    let results = race(THREADS, |i| {
        env.accounts().sign_up(
            &format!("Ann@EXAMPLE.org{}", " ".repeat(i)),
            "Ann",
            PASSWORD,
        )
    });
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(ok, 1, "{results:?}");
    assert_eq!(env.accounts().members().unwrap().len(), 1);
});

both!(one_admin_when_first_sign_ups_race, |env| {
    // Several fresh stores: the window is small.
    for round in 0..6 {
        let fresh;
        let env = if round == 0 {
            env
        } else {
            fresh = Env::new(env.pg);
            &fresh
        };
        let results = race(THREADS, |i| {
            env.accounts()
                .sign_up(&format!("m{i}@example.org"), "M", PASSWORD)
        });
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        let admins: Vec<String> = env
            .accounts()
            .members()
            .unwrap()
            .into_iter()
            .filter(fed::accounts::Member::is_admin)
            .map(|m| m.email)
            .collect();
        assert_eq!(admins.len(), 1, "round {round}: admins {admins:?}");
    }
});

both!(a_code_is_exchanged_once_under_a_race, |env| {
    env.register(client("app", true, false), false);
    let (_, _, s) = env.signed_in("ann@example.org");
    let l = Login::new("app", "openid");
    let code = env.code(&l, &s);
    let cb = callback("app");
    let results = race(THREADS, |_| {
        env.exchange("app", None, &code, Some(&l.req.verifier), Some(&cb))
    });
    let ok: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert!(ok.len() <= 1, "a code was exchanged {} times", ok.len());
    for r in &results {
        if let Err(e) = r {
            assert_eq!(e.code, "invalid_grant", "{e:?}");
        }
    }
});

both!(a_refresh_token_is_used_once_under_a_race, |env| {
    env.register(client("app", true, false), false);
    let (_, _, s) = env.signed_in("ann@example.org");
    let t = env.tokens(&Login::new("app", "openid"), &s, None);
    let r = field(&t, "refresh_token");
    let results = race(THREADS, |_| env.refresh("app", None, &r, None));
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert!(ok <= 1, "a refresh token was used {ok} times: {results:?}");
});

both!(a_reset_token_is_used_once_under_a_race, |env| {
    env.member("ann@example.org");
    env.accounts().request_reset("ann@example.org").unwrap();
    let token = env.mail_token("/reset");
    let results = race(THREADS, |i| {
        env.accounts()
            .reset_password(&token, &format!("new password {i}"))
    });
    let ok: Vec<usize> = (0..THREADS).filter(|i| results[*i].is_ok()).collect();
    assert_eq!(ok.len(), 1, "{results:?}");
    let winner = format!("new password {}", ok[0]);
    env.accounts()
        .sign_in("ann@example.org", &winner, "192.0.2.1")
        .unwrap();
});

both!(lockout_holds_under_parallel_guessing, |env| {
    env.member("ann@example.org");
    let n = 4 * MAX_FAILURES as usize;
    let results = race(n, |i| {
        env.accounts().sign_in(
            "ann@example.org",
            &format!("guess number {i}"),
            &format!("198.51.100.{i}"),
        )
    });
    let checked = results
        .iter()
        .filter(|r| matches!(r, Err(FedError::Invalid(_))))
        .count();
    assert!(
        checked <= MAX_FAILURES as usize,
        "{checked} passwords were tried against one account; the limit is {MAX_FAILURES}"
    );
});
