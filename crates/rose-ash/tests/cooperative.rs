//! Single sign-on across processes: `rose-ash serve` starts the identity
//! provider and the front door as two hosts on two ports; a member signs
//! up at the provider, signs in to the front door through it, and signing
//! out at the provider ends the front door's session too (back-channel
//! logout). Each step goes over real HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};

use common::{Server, free_ports, wait_up};

fn csrf(html: &str) -> String {
    let start = html
        .find("name=\"csrf-token\" content=\"")
        .expect("a csrf meta tag")
        + "name=\"csrf-token\" content=\"".len();
    html[start..start + 32].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_through_the_provider_and_single_logout() {
    let dir = tempfile::tempdir().unwrap();
    let [site_port, idp_port, blog_port, events_port, shop_port] = free_ports();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let _server = Server(
        Command::new(env!("CARGO_BIN_EXE_rose-ash"))
            .args(["serve", "--workers", "1", "--log-level", "warn"])
            .arg("--addr")
            .arg(format!("127.0.0.1:{site_port}"))
            .arg("--idp-addr")
            .arg(format!("127.0.0.1:{idp_port}"))
            .arg("--blog-addr")
            .arg(format!("127.0.0.1:{blog_port}"))
            .arg("--events-addr")
            .arg(format!("127.0.0.1:{events_port}"))
            .arg("--shop-addr")
            .arg(format!("127.0.0.1:{shop_port}"))
            .arg("--data-dir")
            .arg(dir.path())
            .current_dir(&root)
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let (site, idp) = (
        format!("http://127.0.0.1:{site_port}"),
        format!("http://127.0.0.1:{idp_port}"),
    );
    wait_up(&format!("{idp}/")).await;
    wait_up(&format!("{site}/")).await;
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();

    // Sign up at the provider.
    let page = browser.get(format!("{idp}/signup")).send().await.unwrap();
    let token = csrf(&page.text().await.unwrap());
    let r = browser
        .post(format!("{idp}/signup"))
        .form(&[
            ("_csrf", token.as_str()),
            ("name", "Ada"),
            ("email", "Ada@Example.org"),
            ("password", "correct horse"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "sign-up ends on the profile page");

    // A members-only page of the front door sends the browser through the
    // provider and back, signed in.
    let r = browser.get(format!("{site}/account")).send().await.unwrap();
    assert_eq!(r.url().as_str(), format!("{site}/account"));
    let body = r.text().await.unwrap();
    assert!(body.contains("Signed in as Ada"), "{body}");
    assert!(body.contains("ada@example.org"), "{body}");
    assert!(
        body.contains("admin"),
        "the first member is an admin: {body}"
    );

    // A callback that did not start in this browser is refused.
    let stranger = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = stranger
        .get(format!("{site}/auth/callback?code=x&state=y&iss={idp}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("did not start in this browser")
    );

    // Sign-in forms refuse posts without the CSRF token (login CSRF), at
    // the provider's login and consent forms alike.
    for path in ["/login", "/oauth/authorize"] {
        let r = stranger
            .post(format!("{idp}{path}"))
            .form(&[("email", "ada@example.org"), ("password", "correct horse")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{path} without a CSRF token");
    }

    // No open redirects: after signing in at the provider, a `next` that
    // names another site lands on the provider's own front page; an app's
    // `next` that does comes back to the app's front page.
    let page = stranger.get(format!("{idp}/login")).send().await.unwrap();
    let token = csrf(&page.text().await.unwrap());
    let r = stranger
        .post(format!("{idp}/login"))
        .form(&[
            ("_csrf", token.as_str()),
            ("email", "ada@example.org"),
            ("password", "correct horse"),
            ("next", "//evil.example/x"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/");
    let r = browser
        .get(format!("{site}/auth/login?next=https://evil.example/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.url().as_str(),
        format!("{site}/"),
        "back on the app, not elsewhere"
    );

    // Signing out at the provider ends the front door's session too.
    let page = browser.get(format!("{idp}/logout")).send().await.unwrap();
    let token = csrf(&page.text().await.unwrap());
    let r = browser
        .post(format!("{idp}/logout"))
        .form(&[("_csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let no_follow = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // Replay the front door's session cookie by hand: it must be dead.
    let cookies = browser
        .get(format!("{site}/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(cookies.contains("Sign in"), "signed out on the front door");
    let r = no_follow
        .get(format!("{site}/account"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(
        r.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/auth/login?next=")
    );

    // Without a session, a members' page sends you to sign in, but a
    // write is refused as unauthenticated (401) and changes nothing.
    let blog = format!("http://127.0.0.1:{blog_port}");
    wait_up(&format!("{blog}/")).await;
    let anon = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let home = anon.get(format!("{blog}/")).send().await.unwrap();
    let token = csrf(&home.text().await.unwrap());
    let r = anon
        .post(format!("{blog}/posts"))
        .form(&[
            ("_csrf", token.as_str()),
            ("title", "Sneaky"),
            ("body", "not a member"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("Sign in"));
    let r = anon
        .get(format!("{blog}/posts/sneaky"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "no post was made");
    let r = anon.get(format!("{blog}/posts/new")).send().await.unwrap();
    assert_eq!(r.status(), 303);
}
