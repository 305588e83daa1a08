//! Signed peer requests across processes: `rose-ash serve --domain shop
//! --peer events=URL` next to `--domain events --peer shop=URL`. The test
//! speaks as the events peer with the events peer's own key (read from
//! its store), and as forgers without it. A good request makes an order;
//! an unsigned, forged, tampered, expired, replayed or stranger's request
//! gets 401 and makes nothing. Retrying with the same idempotency key
//! finds the same order.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{Server, free_ports, wait_up};

use fed::httpsig::{Outgoing, PeerKey, sign};

fn serve(domain: &str, port: u16, data: &Path, peers: &[(&str, u16)]) -> Server {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rose-ash"));
    cmd.args(["serve", "--workers", "1", "--log-level", "error"])
        .args(["--domain", domain])
        .arg("--addr")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(data);
    for (name, p) in peers {
        cmd.arg("--peer")
            .arg(format!("{name}=http://127.0.0.1:{p}"));
    }
    Server(
        cmd.current_dir(&root)
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A request as a peer would send it; every field can be bent.
struct Req<'a> {
    key: &'a PeerKey,
    key_id: &'a str,
    port: u16,
    path: &'a str,
    query: &'a str,
    body: &'a str,
    created: i64,
    expires: i64,
    nonce: String,
}

impl Req<'_> {
    fn headers(&self) -> Vec<(&'static str, String)> {
        sign(
            self.key,
            &Outgoing {
                method: "POST",
                authority: &format!("127.0.0.1:{}", self.port),
                path: self.path,
                query: self.query,
                body: self.body.as_bytes(),
                key_id: self.key_id,
                created: self.created,
                expires: self.expires,
                nonce: &self.nonce,
            },
        )
    }
}

async fn post(
    port: u16,
    path_and_query: &str,
    body: &str,
    headers: &[(&'static str, String)],
) -> (u16, String) {
    let mut rb = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}{path_and_query}"))
        .header("content-type", "text/sx")
        .body(body.to_owned());
    for (k, v) in headers {
        rb = rb.header(*k, v);
    }
    let resp = rb.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap())
}

async fn order_count(shop: &store::Store) -> usize {
    shop.list(store::ListQuery {
        type_name: "order".into(),
        limit: Some(1000),
        ..Default::default()
    })
    .await
    .unwrap()
    .items
    .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_correctly_signed_peer_requests_change_anything() {
    let dir = tempfile::tempdir().unwrap();
    let [events_port, shop_port, blog_port] = free_ports();
    let events_dir = dir.path().join("events");
    let shop_dir = dir.path().join("shop");
    let _events = serve(
        "events",
        events_port,
        &events_dir,
        &[("shop", shop_port), ("blog", blog_port)],
    );
    let _shop = serve("shop", shop_port, &shop_dir, &[("events", events_port)]);
    let events_url = format!("http://127.0.0.1:{events_port}");
    wait_up(&format!("{events_url}/")).await;
    wait_up(&format!("http://127.0.0.1:{shop_port}/")).await;

    // The events peer's own key, from its store (the process has it open;
    // SQLite in WAL mode lets us read alongside).
    let events_store = store::Store::open(None, &events_dir).unwrap();
    let events_key = fed::peers::peer_key(&events_store).unwrap();
    let shop_store = store::Store::open(None, &shop_dir).unwrap();
    let body = r#"{:key "k-0123456789abcdef" :title "Summer Gig" :buyer {:sub "m1" :name "Ann"}}"#;
    let good = |nonce: &str| Req {
        key: &events_key,
        key_id: &events_url,
        port: shop_port,
        path: "/order",
        query: "event=event:summer-gig",
        body,
        created: now(),
        expires: now() + 60,
        nonce: nonce.to_owned(),
    };
    let path = "/order?event=event:summer-gig";

    // Unsigned.
    let (status, text) = post(shop_port, path, body, &[]).await;
    assert_eq!(status, 401, "{text}");
    assert!(text.contains("not signed"), "{text}");

    // Forged: a key that is not the events peer's, claiming to be it.
    let forger = PeerKey::generate().unwrap();
    let forged = Req {
        key: &forger,
        ..good("n-forged-0000001")
    };
    let (status, text) = post(shop_port, path, body, &forged.headers()).await;
    assert_eq!(status, 401, "{text}");
    assert!(text.contains("not valid"), "{text}");

    // A stranger: a key id that is not one of the shop's peers.
    let stranger = Req {
        key: &forger,
        key_id: "http://127.0.0.1:1",
        ..good("n-stranger-00001")
    };
    let (status, text) = post(shop_port, path, body, &stranger.headers()).await;
    assert_eq!(status, 401, "{text}");
    assert!(text.contains("not one of this host's peers"), "{text}");

    // Tampered: signed for one event, sent for another.
    let (status, text) = post(
        shop_port,
        "/order?event=event:other",
        body,
        &good("n-tampered-00001").headers(),
    )
    .await;
    assert_eq!(status, 401, "{text}");

    // Tampered body: the digest no longer matches.
    let (status, text) = post(
        shop_port,
        path,
        &body.replace("Ann", "Eve"),
        &good("n-tampered-00002").headers(),
    )
    .await;
    assert_eq!(status, 401, "{text}");
    assert!(text.contains("Content-Digest"), "{text}");

    // Expired.
    let expired = Req {
        created: now() - 400,
        expires: now() - 340,
        ..good("n-expired-000001")
    };
    let (status, text) = post(shop_port, path, body, &expired.headers()).await;
    assert_eq!(status, 401, "{text}");
    assert!(text.contains("expired"), "{text}");
    assert_eq!(
        order_count(&shop_store).await,
        0,
        "refused requests made orders"
    );

    // The real thing.
    let first = good("n-good-000000001").headers();
    let (status, text) = post(shop_port, path, body, &first).await;
    assert_eq!(status, 201, "{text}");
    assert!(text.contains(":created true"), "{text}");
    assert_eq!(order_count(&shop_store).await, 1);

    // Replayed: the very same signed request again.
    let (status, text) = post(shop_port, path, body, &first).await;
    assert_eq!(status, 401, "{text}");
    assert!(text.contains("replayed"), "{text}");

    // A retry (new signature, same idempotency key) finds the same order.
    let (status, text) = post(shop_port, path, body, &good("n-retry-00000001").headers()).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains(":created false"), "{text}");
    assert_eq!(
        order_count(&shop_store).await,
        1,
        "a retry made a second order"
    );

    // Correctly signed but bad content: a clear 400 each, and no order.
    for (bad, why) in [
        ("(1 2 3)", "must be a dict"),
        ("{:key \"short\"}", "idempotency"),
        ("{:key (1", "not valid"),
    ] {
        let r = Req {
            body: bad,
            ..good(&format!("n-bad-{}", bad.len()))
        };
        let (status, text) = post(shop_port, path, bad, &r.headers()).await;
        assert_eq!(status, 400, "{bad}: {text}");
        assert!(text.contains(why), "{bad}: {text}");
        assert!(
            text.starts_with("{:error"),
            "peers get SX, not a page: {text}"
        );
    }
    let wrong_event = Req {
        query: "event=post:welcome",
        ..good("n-wrong-event-01")
    };
    let (status, text) = post(
        shop_port,
        "/order?event=post:welcome",
        body,
        &wrong_event.headers(),
    )
    .await;
    assert_eq!(status, 400, "{text}");
    assert_eq!(order_count(&shop_store).await, 1);

    // A malformed signature header is a clear 401, not a crash.
    let mut broken = good("n-broken-0000001").headers();
    broken[1].1 = "sig1=(\"@method\";created=oops".to_owned();
    let (status, text) = post(shop_port, path, body, &broken).await;
    assert_eq!(status, 401, "{text}");
    assert!(text.contains("malformed"), "{text}");
    assert_eq!(order_count(&shop_store).await, 1);
}

/// The tickets sold on an event, as the events store links them.
async fn sold(events: &store::Store, event: &str) -> Vec<store::Target> {
    events
        .related(store::RelatedQuery {
            id: event.to_owned(),
            rel: "sold".to_owned(),
            ..Default::default()
        })
        .await
        .unwrap()
        .items
}

/// An order the shop made whose sold edge the events peer never wrote (as
/// when events fails between the shop's answer and its own write) is
/// linked when events restarts, by reconciling with the shop's signed
/// `/peer/orders`; nobody else may read that list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_reconciles_orders_missing_their_sold_edge() {
    let dir = tempfile::tempdir().unwrap();
    let [events_port, shop_port, blog_port] = free_ports();
    let events_dir = dir.path().join("events");
    let shop_dir = dir.path().join("shop");
    // With a blog configured (not running), events seeds its demo event.
    let peers = [("shop", shop_port), ("blog", blog_port)];
    let events = serve("events", events_port, &events_dir, &peers);
    let _shop = serve("shop", shop_port, &shop_dir, &[("events", events_port)]);
    let (events_url, shop_url) = (
        format!("http://127.0.0.1:{events_port}"),
        format!("http://127.0.0.1:{shop_port}"),
    );
    wait_up(&format!("{events_url}/")).await;
    wait_up(&format!("{shop_url}/")).await;

    // Speak as the events peer, as if it died after the shop answered.
    let events_store = store::Store::open(None, &events_dir).unwrap();
    let events_key = fed::peers::peer_key(&events_store).unwrap();
    let event = "event:repair-cafe-december";
    let query = format!("event={event}");
    let body =
        r#"{:key "k-reconcile-0000001" :title "Repair café" :buyer {:sub "m1" :name "Ann"}}"#;
    let req = Req {
        key: &events_key,
        key_id: &events_url,
        port: shop_port,
        path: "/order",
        query: &query,
        body,
        created: now(),
        expires: now() + 60,
        nonce: "n-reconcile-000001".to_owned(),
    };
    let (status, text) = post(shop_port, &format!("/order?{query}"), body, &req.headers()).await;
    assert_eq!(status, 201, "{text}");
    let order = text
        .split('"')
        .find(|s| s.starts_with("order:"))
        .unwrap_or_else(|| panic!("{text}"))
        .to_owned();
    assert!(sold(&events_store, event).await.is_empty());

    // The list of orders is for signed peers only.
    let r = reqwest::get(format!("{shop_url}/peer/orders"))
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // Events restarts and reconciles soon after it serves.
    drop(events);
    let _events = serve("events", events_port, &events_dir, &peers);
    wait_up(&format!("{events_url}/")).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while sold(&events_store, event).await.is_empty() {
        assert!(std::time::Instant::now() < deadline, "never reconciled");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(
        sold(&events_store, event).await,
        vec![store::Target {
            peer: shop_url.clone(),
            id: order
        }]
    );
    let page = reqwest::get(format!("{events_url}/calendars"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("<span class=\"sold-count\">1</span> ticket sold"),
        "{page}"
    );
}
