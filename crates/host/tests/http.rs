//! The host over real HTTP on loopback: a server on a random port running
//! `tests/testapp` on top of the repository's `lib/host`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use host::{Config, RequestBudget, Running};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A library root holding the repository's `lib/host` and a copy of the
/// test app (copied so `--dev` tests can edit it).
fn lib_dir(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::Builder::new()
        .prefix(name)
        .tempdir()
        .unwrap_or_else(|e| panic!("tempdir: {e}"));
    let lib = tmp.path().join("lib");
    for (from, to) in [
        (repo_root().join("lib/host"), lib.join("host")),
        (repo_root().join("lib/store"), lib.join("store")),
        (
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/testapp"),
            lib.join("testapp"),
        ),
    ] {
        std::fs::create_dir_all(&to).unwrap_or_else(|e| panic!("mkdir: {e}"));
        for entry in std::fs::read_dir(&from).unwrap_or_else(|e| panic!("read {from:?}: {e}")) {
            let entry = entry.unwrap_or_else(|e| panic!("{e}"));
            std::fs::copy(entry.path(), to.join(entry.file_name()))
                .unwrap_or_else(|e| panic!("copy: {e}"));
        }
    }
    let static_dir = tmp.path().join("static");
    std::fs::create_dir_all(&static_dir).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(static_dir.join("site.css"), "body { color: red }")
        .unwrap_or_else(|e| panic!("{e}"));
    (tmp, lib)
}

fn config(lib: &Path) -> Config {
    Config {
        addr: "127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}")),
        lib_dir: lib.to_path_buf(),
        apps: vec!["store".to_owned(), "testapp".to_owned()],
        static_dirs: vec![lib.join("../static")],
        data_dir: lib.join("../data"),
        dev: false,
        workers: 1,
        max_body: 64 * 1024,
        read_timeout: Duration::from_secs(30),
        budget: RequestBudget {
            max_steps: Some(2_000_000),
            max_time: Some(Duration::from_secs(10)),
            max_heap: Some(64 * 1024 * 1024),
        },
        secure_cookies: false,
        form_action: Vec::new(),
    }
}

struct Server {
    running: Option<Running>,
    base: String,
    client: reqwest::Client,
    _tmp: tempfile::TempDir,
    lib: PathBuf,
}

impl Server {
    async fn start_with(name: &str, f: impl FnOnce(&mut Config)) -> Server {
        let (tmp, lib) = lib_dir(name);
        let mut cfg = config(&lib);
        f(&mut cfg);
        std::fs::create_dir_all(&cfg.data_dir).unwrap_or_else(|e| panic!("{e}"));
        let store = store::Store::open_sqlite(&cfg.data_dir.join("store.sqlite"))
            .unwrap_or_else(|e| panic!("store: {e}"));
        let services: Vec<std::sync::Arc<dyn host::Service>> =
            vec![std::sync::Arc::new(host::StoreService(store))];
        let running = host::start(cfg, services, false)
            .await
            .unwrap_or_else(|e| panic!("start: {e}"));
        let base = format!("http://{}", running.addr);
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        Server {
            running: Some(running),
            base,
            client,
            _tmp: tmp,
            lib,
        }
    }

    async fn start(name: &str) -> Server {
        Server::start_with(name, |_| {}).await
    }

    async fn get(&self, path: &str) -> (u16, reqwest::header::HeaderMap, String) {
        self.send(self.client.get(format!("{}{path}", self.base)))
            .await
    }

    async fn send(&self, rb: reqwest::RequestBuilder) -> (u16, reqwest::header::HeaderMap, String) {
        let resp = rb.send().await.unwrap_or_else(|e| panic!("request: {e}"));
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.text().await.unwrap_or_else(|e| panic!("body: {e}"));
        (status, headers, body)
    }

    /// A CSRF token and the cookie header that carries it.
    async fn csrf(&self) -> (String, String) {
        let (_, headers, _) = self.get("/").await;
        let cookie = headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with("rose_ash_csrf="))
            .unwrap_or_else(|| panic!("no csrf cookie"))
            .split(';')
            .next()
            .unwrap_or_default()
            .to_owned();
        let token = cookie.trim_start_matches("rose_ash_csrf=").to_owned();
        (token, cookie)
    }

    /// A POST to `path` carrying the client's CSRF cookie and token header.
    fn post_with_token(&self, path: &str, cookie: &str, token: &str) -> reqwest::RequestBuilder {
        self.client
            .post(format!("{}{path}", self.base))
            .header("cookie", cookie)
            .header("x-csrf-token", token)
    }

    async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await.unwrap_or_else(|e| panic!("stop: {e}"));
        }
    }
}

fn header<'a>(h: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_render_in_the_layout_with_security_headers() {
    let s = Server::start("pages").await;
    let (status, h, body) = s.get("/").await;
    assert_eq!(status, 200);
    assert_eq!(header(&h, "content-type"), "text/html; charset=utf-8");
    assert!(
        body.starts_with("<!doctype html><html lang=\"en\">"),
        "{body}"
    );
    assert!(
        body.contains("<title>Test home — Rose Ash</title>"),
        "{body}"
    );
    assert!(
        body.contains("<main id=\"main\"><h1>home</h1><p>x&lt;y</p></main>"),
        "{body}"
    );
    assert!(
        body.contains("<meta name=\"csrf-token\" content=\""),
        "{body}"
    );
    // The parts made once at load (host/head-meta, host/head-assets,
    // host/footer) are what the elements render to, in place.
    assert!(
        body.starts_with(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>Test home — Rose Ash</title><meta name=\"csrf-token\" content=\""
        ),
        "{body}"
    );
    let assets = body
        .split_once("<meta name=\"csrf-token\" content=\"")
        .and_then(|(_, rest)| rest.get(34..))
        .and_then(|rest| rest.split_once("</head>"))
        .map(|(head, _)| head)
        .unwrap_or_default();
    let css = assets
        .strip_prefix("<link rel=\"stylesheet\" href=\"/static/site.")
        .and_then(|r| r.split_once(".css\"><script src=\"/static/sx."))
        .and_then(|(_, r)| r.strip_suffix(".js\" defer></script>"));
    assert!(css.is_some(), "{assets}");
    assert!(
        body.contains(
            "</main><footer class=\"site-footer\"><p>Powered by Rose Ash</p></footer>\
             <script type=\"text/sx\" data-sx-islands>"
        ) && body.ends_with("</script></body></html>"),
        "{body}"
    );
    assert!(header(&h, "content-security-policy").contains("frame-ancestors 'none'"));
    assert_eq!(header(&h, "x-content-type-options"), "nosniff");
    assert_eq!(
        header(&h, "referrer-policy"),
        "strict-origin-when-cross-origin"
    );
    let cookie = header(&h, "set-cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "{cookie}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_parameters_and_route_specificity() {
    let s = Server::start("params").await;
    let (status, _, body) = s.get("/posts/hello%20world").await;
    assert_eq!(status, 200);
    assert!(body.contains("<h1>hello world</h1>"), "{body}");
    let (_, _, body) = s.get("/posts/new").await;
    assert!(body.contains("new post form"), "{body}");
    let (_, _, body) = s.get("/files/a/b/c.txt").await;
    assert!(body.contains("<p>a/b/c.txt</p>"), "{body}");
    let (status, _, _) = s.get("/posts/%FF").await;
    assert_eq!(status, 400);
    s.stop().await;
}

/// `(host/every 1 f)` runs f every second while the host serves, the first
/// time a second after start; its second run fails and the third still
/// comes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn periodic_jobs_run_while_serving() {
    let s = Server::start("every").await;
    let ticks = |body: &str| -> i64 {
        let start = body
            .find("<p id=\"ticks\">")
            .unwrap_or_else(|| panic!("{body}"))
            + 14;
        body[start..]
            .split('<')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{body}"))
    };
    let (_, _, body) = s.get("/ticks").await;
    assert!(ticks(&body) <= 1, "{body}");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, _, body) = s.get("/ticks").await;
        if ticks(&body) >= 3 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "only {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_route_gets_the_sx_404_page() {
    let s = Server::start("notfound").await;
    let (status, h, body) = s.get("/no/such/page").await;
    assert_eq!(status, 404);
    assert_eq!(header(&h, "content-type"), "text/html; charset=utf-8");
    assert!(
        body.contains("<section class=\"error-page\"><h1>404 Not found</h1>"),
        "{body}"
    );
    assert!(
        body.contains("There is no page at /no/such/page."),
        "{body}"
    );
    let (status, h, _) = s.send(s.client.delete(format!("{}/", s.base))).await;
    assert_eq!(status, 405);
    assert_eq!(header(&h, "allow"), "GET, HEAD");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raising_handler_gets_500_and_the_server_keeps_serving() {
    let s = Server::start("raise").await;
    for path in ["/raise", "/unbound", "/unknown-op", "/bad-header"] {
        let (status, _, body) = s.get(path).await;
        assert_eq!(status, 500, "{path}");
        assert!(body.contains("500 Something went wrong"), "{path}: {body}");
        // Not in --dev: no backtrace leaks to visitors.
        assert!(!body.contains("backtrace"), "{path}: {body}");
        let (status, _, _) = s.get("/").await;
        assert_eq!(status, 200, "after {path}");
    }
    let (status, _, body) = s.get("/caught").await;
    assert_eq!(status, 200);
    assert!(
        body.contains("caught: perform: this host has no operation :no-such-op"),
        "{body}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budgets_end_runaway_code_with_500() {
    let s = Server::start("budget").await;
    let t = Instant::now();
    let (status, _, body) = s.get("/loop").await;
    assert_eq!(status, 500, "{body}");
    assert!(t.elapsed() < Duration::from_secs(10));
    let (status, _, _) = s.get("/heap").await;
    assert_eq!(status, 500);
    s.stop().await;
    // The time budget covers IO waits, and try cannot catch it.
    let s = Server::start_with("budget-io", |c| {
        c.budget.max_time = Some(Duration::from_millis(300))
    })
    .await;
    let t = Instant::now();
    let (status, _, body) = s.get("/long-io").await;
    assert_eq!(status, 500, "{body}");
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    let (status, _, _) = s.get("/").await;
    assert_eq!(status, 200);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_io_does_not_delay_other_requests_on_the_same_worker() {
    // One SX worker thread: if waiting blocked it, /fast would wait 1.5 s.
    let s = Server::start("slow").await;
    let slow = {
        let client = s.client.clone();
        let url = format!("{}/slow", s.base);
        tokio::spawn(async move {
            let t = Instant::now();
            let r = client.get(url).send().await.map(|r| r.status().as_u16());
            (r.ok(), t.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let t = Instant::now();
    for _ in 0..5 {
        let (status, _, body) = s.get("/fast").await;
        assert_eq!(status, 200);
        assert!(body.contains("<p>fast</p>"));
    }
    let fast = t.elapsed();
    let (slow_status, slow_time) = slow.await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(slow_status, Some(200));
    assert!(slow_time >= Duration::from_millis(1400), "{slow_time:?}");
    assert!(
        fast < Duration::from_millis(1000),
        "fast requests took {fast:?}"
    );
    s.stop().await;
}

/// Opens a raw connection to `addr` and writes `bytes` on it.
async fn send_raw(addr: &str, bytes: &[u8]) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let mut conn = tokio::net::TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    conn.write_all(bytes)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    conn
}

/// Everything the server sends until it closes `conn`; `None` when it is
/// still open after 10 seconds.
async fn read_until_closed(conn: &mut tokio::net::TcpStream) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    // A reset counts as closed: what was read before it is the answer.
    let _read = tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut buf))
        .await
        .ok()?;
    Some(String::from_utf8_lossy(&buf).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_http_gets_400_and_the_server_keeps_serving() {
    let s = Server::start("malformed").await;
    let addr = s.base.trim_start_matches("http://").to_owned();
    for garbage in [
        &b"NOT HTTP AT ALL\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n",
        b"GET / HTTP/1.1\r\nBad Header Line\r\n\r\n",
        b"\x00\x01\x02\xff\xfe\r\n\r\n",
    ] {
        let text = read_until_closed(&mut send_raw(&addr, garbage).await).await;
        assert!(
            text.as_deref()
                .is_some_and(|t| t.starts_with("HTTP/1.1 400")),
            "{garbage:?} got {text:?}"
        );
    }
    let (status, _, _) = s.get("/").await;
    assert_eq!(status, 200);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_connections_are_closed_after_the_read_timeout() {
    let s = Server::start_with("slow", |c| c.read_timeout = Duration::from_secs(1)).await;
    let addr = s.base.trim_start_matches("http://").to_owned();
    // Half a request head, then nothing (slowloris).
    let mut slow = send_raw(&addr, b"GET / HTTP/1.1\r\nHost: x\r\n").await;
    // A whole request, then idle on the kept-alive connection.
    let mut idle = send_raw(&addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let started = std::time::Instant::now();
    let slow_text = read_until_closed(&mut slow).await;
    assert!(slow_text.is_some(), "slow head: still open after 10 s");
    let idle_text = read_until_closed(&mut idle).await;
    assert!(
        idle_text
            .as_deref()
            .is_some_and(|t| t.starts_with("HTTP/1.1 200")),
        "idle: {idle_text:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    // A body that stops part-way: 408, and the connection closes.
    let mut stalled = send_raw(
        &addr,
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly ten b",
    )
    .await;
    let text = read_until_closed(&mut stalled).await;
    assert!(
        text.as_deref()
            .is_some_and(|t| t.starts_with("HTTP/1.1 408")),
        "stalled body: {text:?}"
    );
    // Serving goes on.
    let (status, _, _) = s.get("/").await;
    assert_eq!(status, 200);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_body_gets_413() {
    let s = Server::start("big").await;
    let (token, cookie) = s.csrf().await;
    let big = "x".repeat(100 * 1024);
    let (status, _, body) = s
        .send(
            s.post_with_token("/echo", &cookie, &token)
                .header("content-type", "text/plain")
                .body(big),
        )
        .await;
    assert_eq!(status, 413);
    assert!(body.contains("413 Payload too large"), "{body}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_carries_the_security_headers() {
    let s = Server::start("security-headers").await;
    let post = s.client.post(format!("{}/things", s.base));
    let static_post = s.client.post(format!("{}/static/site.css", s.base));
    let responses = [
        s.get("/").await,
        s.get("/nope").await,
        s.get("/static/site.css").await,
        s.get("/robots.txt").await,
        s.send(post).await,
        s.send(static_post).await,
    ];
    for (status, h, _) in &responses {
        assert!(
            header(h, "content-security-policy").contains("frame-ancestors 'none'"),
            "{status}"
        );
        assert_eq!(header(h, "x-content-type-options"), "nosniff", "{status}");
        assert_eq!(
            header(h, "referrer-policy"),
            "strict-origin-when-cross-origin",
            "{status}"
        );
        assert_eq!(header(h, "x-frame-options"), "DENY", "{status}");
        assert_eq!(
            header(h, "cross-origin-opener-policy"),
            "same-origin",
            "{status}"
        );
    }
    // A handler's own policy is kept, and not doubled.
    let (_, h, _) = s.get("/own-csp").await;
    let csp: Vec<_> = h.get_all("content-security-policy").iter().collect();
    assert_eq!(csp, ["default-src 'none'"]);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_request_sees_its_own_csrf_token_while_others_run() {
    // One SX worker: the two requests' machines interleave on it (each
    // waits at a sleep), so a token kept per thread would show through.
    let s = Server::start("csrf-tokens").await;
    let tokens = ["a".repeat(32), "b".repeat(32), "c".repeat(32)];
    let ask = |t: &str| {
        s.send(
            s.client
                .get(format!("{}/token", s.base))
                .header("cookie", format!("rose_ash_csrf={t}")),
        )
    };
    let (a, b, c) = tokio::join!(ask(&tokens[0]), ask(&tokens[1]), ask(&tokens[2]));
    for (t, (status, _, body)) in tokens.iter().zip([a, b, c]) {
        assert_eq!(status, 200);
        assert_eq!(
            body,
            format!("{t} {t} {t} <input type=\"hidden\" name=\"_csrf\" value=\"{t}\">")
        );
    }
    // A fresh client gets a fresh token, the same in its cookie and page.
    let (_, h, body) = s.get("/token").await;
    let cookie = header(&h, "set-cookie");
    let token = cookie
        .strip_prefix("rose_ash_csrf=")
        .and_then(|c| c.split(';').next())
        .unwrap_or_default();
    assert_eq!(token.len(), 32, "{cookie}");
    assert!(
        body.starts_with(&format!("{token} {token} {token} ")),
        "{body}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csrf_is_required_on_unsafe_methods() {
    let s = Server::start("csrf").await;
    let url = format!("{}/things", s.base);
    // No token at all.
    let (status, _, body) = s.send(s.client.post(&url).form(&[("slug", "a")])).await;
    assert_eq!(status, 403);
    assert!(body.contains("CSRF"), "{body}");
    let (token, cookie) = s.csrf().await;
    // Cookie without the field, and a wrong field.
    let (status, _, _) = s
        .send(
            s.client
                .post(&url)
                .header("cookie", &cookie)
                .form(&[("slug", "a")]),
        )
        .await;
    assert_eq!(status, 403);
    let (status, _, _) = s
        .send(
            s.client
                .post(&url)
                .header("cookie", &cookie)
                .form(&[("slug", "a"), ("_csrf", "0123456789abcdef0123456789abcdef")]),
        )
        .await;
    assert_eq!(status, 403);
    // The field without the cookie (another site's form).
    let (status, _, _) = s
        .send(
            s.client
                .post(&url)
                .form(&[("slug", "a"), ("_csrf", token.as_str())]),
        )
        .await;
    assert_eq!(status, 403);
    // Right token in the form, and in the header.
    let (status, h, _) = s
        .send(
            s.client
                .post(&url)
                .header("cookie", &cookie)
                .form(&[("slug", "a"), ("_csrf", token.as_str())]),
        )
        .await;
    assert_eq!(status, 303);
    assert_eq!(header(&h, "location"), "/posts/a");
    let (status, _, _) = s
        .send(
            s.post_with_token("/things", &cookie, &token)
                .form(&[("slug", "b")]),
        )
        .await;
    assert_eq!(status, 303);
    // A handler that opts out.
    let (status, _, body) = s.send(s.client.post(format!("{}/api/ping", s.base))).await;
    assert_eq!((status, body.as_str()), (201, "{\"pong\":true}"));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sx_data_in_and_out_and_peer_routes_refuse_the_unsigned() {
    let s = Server::start("sxdata").await;
    let post = |path: &str, body: &str| {
        s.client
            .post(format!("{}{path}", s.base))
            .header("content-type", "text/sx")
            .body(body.to_owned())
    };
    // A list of dicts, canonical, as text/sx.
    let (status, h, body) = s.send(post("/data", "{:b 2 :a (1 \"x\")}")).await;
    assert_eq!(status, 201, "{body}");
    assert!(header(&h, "content-type").starts_with("text/sx"));
    assert_eq!(body, "({:got {:a (1 \"x\") :b 2}} {:n 2})");
    // Malformed SX: 400 with the position, before SX runs.
    let (status, _, body) = s.send(post("/data", "{:a (1 2")).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("request body"), "{body}");
    // A peer route with no peer service: 401 as SX data, nothing runs.
    let (status, h, body) = s.send(post("/peer/thing", "{}")).await;
    assert_eq!(status, 401, "{body}");
    assert!(header(&h, "accept-signature").contains("rose-ash-peer"));
    assert!(body.starts_with("{:error"), "{body}");
    assert!(!body.contains(":ran"), "{body}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_data_reaches_sx() {
    let s = Server::start("reqdata").await;
    let (status, h, body) = s
        .send(
            s.client
                .get(format!("{}/echo?a=1&b=2&b=3", s.base))
                .header("user-agent", "tester/1")
                .header("cookie", "k=v; q=\"w\""),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(header(&h, "content-type"), "application/json");
    assert_eq!(
        body,
        r#"{"addr":"127.0.0.1","cookies":{"k":"v","q":"w"},"method":"GET","params":{},"path":"/echo","query":{"a":"1","b":["2","3"]},"sx":false,"ua":"tester/1","url":"/echo?a=1&b=2&b=3"}"#
    );
    let (_, _, body) = s.get("/echo").await;
    assert!(
        body.contains(r#""cookies":{},"#)
            && body.contains(r#""path":"/echo","#)
            && body.contains(r#""url":"/echo"}"#),
        "{body}"
    );
    let (token, cookie) = s.csrf().await;
    let post = || s.post_with_token("/echo", &cookie, &token);
    let (_, _, body) = s.send(post().form(&[("x", "1 & 2")])).await;
    assert_eq!(body, r#"{"body":null,"form":{"x":"1 & 2"},"json":null}"#);
    let (_, _, body) = s
        .send(
            post()
                .header("content-type", "application/json")
                .body(r#"{"k":[1,2.5,"s"]}"#),
        )
        .await;
    assert_eq!(
        body,
        r#"{"body":null,"form":null,"json":{"k":[1,2.5,"s"]}}"#
    );
    let (status, _, body) = s
        .send(
            post()
                .header("content-type", "application/json")
                .body(r#"{"k": [1,"#),
        )
        .await;
    assert_eq!(status, 400);
    assert!(body.contains("The JSON body is not valid"), "{body}");
    let (_, _, body) = s
        .send(post().header("content-type", "text/plain").body("hello"))
        .await;
    assert_eq!(body, r#"{"body":"hello","form":null,"json":null}"#);
    let (status, _, _) = s
        .send(
            post()
                .header("content-type", "text/plain")
                .body(vec![0xffu8, 0xfe]),
        )
        .await;
    assert_eq!(status, 400);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sx_requests_get_sx_wire() {
    let s = Server::start("wire").await;
    let (status, h, body) = s
        .send(
            s.client
                .get(format!("{}/posts/a%22b", s.base))
                .header("sx-request", "true"),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(header(&h, "content-type"), "text/sx; charset=utf-8");
    assert_eq!(body, "(<> (h1 \"a\\\"b\"))");
    // The same text as the full page's <title>.
    assert_eq!(
        header(&h, "sx-title"),
        "Post%20a%22b%20%E2%80%94%20Rose%20Ash"
    );
    // Errors too.
    let (status, _, body) = s
        .send(
            s.client
                .get(format!("{}/nope", s.base))
                .header("sx-request", "true"),
        )
        .await;
    assert_eq!(status, 404);
    assert!(body.starts_with("(section :class \"error-page\""), "{body}");
    // Redirects become SX-Redirect.
    let (token, cookie) = s.csrf().await;
    let (status, h, _) = s
        .send(
            s.post_with_token("/things", &cookie, &token)
                .header("sx-request", "true")
                .form(&[("slug", "z")]),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(header(&h, "sx-redirect"), "/posts/z");
    // A boosted form keeps client navigation going.
    let (status, h, _) = s
        .send(
            s.post_with_token("/things", &cookie, &token)
                .header("sx-request", "true")
                .header("sx-boosted", "true")
                .form(&[("slug", "y")]),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(header(&h, "sx-location"), "/posts/y");
    // ...but a redirect to another site is a full page load even then.
    let (status, h, _) = s
        .send(
            s.post_with_token("/away", &cookie, &token)
                .header("sx-request", "true")
                .header("sx-boosted", "true"),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        header(&h, "sx-redirect"),
        "https://elsewhere.example/signed-out"
    );
    assert!(!h.contains_key("sx-location"));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_kinds_status_headers_and_cookies() {
    let s = Server::start("kinds").await;
    let (status, h, body) = s.get("/robots.txt").await;
    assert_eq!((status, body.as_str()), (200, "User-agent: *\n"));
    assert_eq!(header(&h, "content-type"), "text/plain; charset=utf-8");
    let (status, h, body) = s.get("/teapot").await;
    assert_eq!(status, 418);
    assert_eq!(header(&h, "x-custom"), "yes");
    assert!(body.contains("short and stout"));
    let (_, h, _) = s.get("/set-cookie").await;
    let cookies: Vec<&str> = h
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    assert!(
        cookies.contains(&"flavour=oat; Path=/; HttpOnly; SameSite=Lax"),
        "{cookies:?}"
    );
    // Behind TLS, cookies are Secure.
    let (_, h, _) = s
        .send(
            s.client
                .get(format!("{}/set-cookie", s.base))
                .header("x-forwarded-proto", "https"),
        )
        .await;
    let cookies: Vec<&str> = h
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    assert!(
        cookies.iter().all(|c| c.ends_with("; Secure")),
        "{cookies:?}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_is_escaped() {
    let s = Server::start("xss").await;
    let vectors = [
        "<script>alert(1)</script>",
        "\"><img src=x onerror=alert(1)>",
        "' onmouseover='alert(1)",
        "javascript:alert(1)",
        " JaVaScRiPt:alert(1)",
    ];
    for v in vectors {
        let url = reqwest::Url::parse_with_params(&format!("{}/xss", s.base), &[("q", v)])
            .unwrap_or_else(|e| panic!("{e}"));
        let (status, _, body) = s.send(s.client.get(url)).await;
        assert_eq!(status, 200);
        let main = body.split("<main id=\"main\">").nth(1).unwrap_or_default();
        let main = main.split("</main>").next().unwrap_or_default();
        // Exactly the tags and quotes the page writes: nothing broke out
        // of a text node or an attribute value.
        assert_eq!(main.matches('<').count(), 7, "{v}: {main}");
        let tag_quotes: usize = main
            .split('<')
            .skip(1)
            .map(|t| t.split('>').next().unwrap_or_default().matches('"').count())
            .sum();
        assert_eq!(tag_quotes, 4, "{v}: {main}");
        assert!(
            !main.contains("href=\"javascript:") && !main.contains("href=\" JaVaScRiPt"),
            "{v}: {main}"
        );
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn islands_render_with_their_marker() {
    let s = Server::start("island").await;
    let (_, _, body) = s.get("/island").await;
    assert!(
        body.contains("<div><sx-island data-sx-island=\"~t/counter\" data-sx-props=\"{:start 5}\"><button>5</button></sx-island></div>"),
        "{body}"
    );
    // The browser gets the island's definition to hydrate it with.
    assert!(
        body.contains("<script type=\"text/sx\" data-sx-islands>(defisland ~t/counter"),
        "{body}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_files_have_hashed_names_and_long_caching() {
    let s = Server::start("static").await;
    let (_, _, body) = s.get("/").await;
    let href = body
        .split("<link rel=\"stylesheet\" href=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_else(|| panic!("no stylesheet link in {body}"))
        .to_owned();
    assert!(
        href.starts_with("/static/site.")
            && href.ends_with(".css")
            && href.len() > "/static/site.css".len()
    );
    let (status, h, css) = s.get(&href).await;
    assert_eq!(status, 200);
    assert_eq!(css, "body { color: red }");
    assert_eq!(
        header(&h, "cache-control"),
        "public, max-age=31536000, immutable"
    );
    assert_eq!(header(&h, "content-type"), "text/css; charset=utf-8");
    let etag = header(&h, "etag").to_owned();
    let (status, _, _) = s
        .send(
            s.client
                .get(format!("{}{href}", s.base))
                .header("if-none-match", etag),
        )
        .await;
    assert_eq!(status, 304);
    // The browser runtime is built in, with no static directory holding it.
    let js = body
        .split("<script src=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_else(|| panic!("no runtime script in {body}"))
        .to_owned();
    assert!(js.starts_with("/static/sx.") && js.ends_with(".js"), "{js}");
    let (status, h, code) = s.get(&js).await;
    assert_eq!(status, 200);
    assert_eq!(header(&h, "content-type"), "text/javascript; charset=utf-8");
    assert!(code.len() > 10_000);
    let (status, h, _) = s.get("/static/site.css").await;
    assert_eq!(status, 200);
    assert_eq!(header(&h, "cache-control"), "no-cache");
    let (status, _, _) = s.get("/static/nope.css").await;
    assert_eq!(status, 404);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_are_compressed_when_asked() {
    let s = Server::start("gzip").await;
    let resp = s
        .client
        .get(format!("{}/", s.base))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(header(resp.headers(), "content-encoding"), "gzip");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_mode_reloads_and_shows_backtraces() {
    let s = Server::start_with("dev", |c| c.dev = true).await;
    let (_, _, body) = s.get("/unbound").await;
    assert!(body.contains("<pre class=\"backtrace\">"), "{body}");
    assert!(body.contains("unbound symbol: no-such-function"), "{body}");
    assert!(body.contains("app.sx:"), "{body}");
    // Edit a page: the next request sees it.
    let app = s.lib.join("testapp/extra.sx");
    std::fs::write(
        &app,
        "(defpage t-extra \"/extra\" (req) (p \"version one\"))",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut seen = String::new();
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        seen = s.get("/extra").await.2;
        if seen.contains("version one") {
            break;
        }
    }
    assert!(seen.contains("version one"), "{seen}");
    // A broken edit shows the load error with its position.
    std::fs::write(&app, "(defpage t-extra \"/extra\" (req) (p \"unclosed\")")
        .unwrap_or_else(|e| panic!("{e}"));
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        seen = s.get("/").await.2;
        if seen.contains("does not load") {
            break;
        }
    }
    assert!(seen.contains("The SX library does not load"), "{seen}");
    assert!(seen.contains("extra.sx:1:"), "{seen}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_library_that_does_not_load_stops_startup_with_its_position() {
    let (_tmp, lib) = lib_dir("broken");
    std::fs::write(lib.join("testapp/zz.sx"), "(define x (+ 1 2)\n(oops")
        .unwrap_or_else(|e| panic!("{e}"));
    let err = match host::start(config(&lib), Vec::new(), false).await {
        Ok(_) => panic!("a broken library started"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("zz.sx:"), "{err}");
    let (_tmp2, lib2) = lib_dir("dup");
    std::fs::write(
        lib2.join("testapp/zz.sx"),
        "(defpage dup-home \"/\" (req) (p))",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let err = match host::start(config(&lib2), Vec::new(), false).await {
        Ok(_) => panic!("a duplicate route started"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("GET / is declared twice"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_reach_the_store_through_perform() {
    let s = Server::start("store").await;
    let (token, cookie) = s.csrf().await;
    let (status, h, _) = s
        .send(
            s.client
                .post(format!("{}/notes", s.base))
                .header("cookie", &cookie)
                .form(&[
                    ("slug", "first"),
                    ("text", "hello <world>"),
                    ("_csrf", token.as_str()),
                ]),
        )
        .await;
    assert_eq!(status, 303);
    assert_eq!(header(&h, "location"), "/notes/first");
    let (status, _, body) = s.get("/notes/first").await;
    assert_eq!(status, 200);
    assert!(
        body.contains("<p class=\"note\">hello &lt;world&gt;</p>"),
        "{body}"
    );
    let (status, _, _) = s.get("/notes/missing").await;
    assert_eq!(status, 404);
    s.stop().await;
}

/// The SMTP sender speaks real SMTP: a minimal server on loopback records
/// the conversation, and the mail arrives with its headers and body.
#[test]
fn smtp_mailer_delivers_a_mail() {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut out = stream.try_clone().unwrap();
        let mut lines = BufReader::new(stream);
        let mut seen = String::new();
        write!(out, "220 sink ESMTP\r\n").unwrap();
        let mut line = String::new();
        loop {
            line.clear();
            if lines.read_line(&mut line).unwrap() == 0 {
                break;
            }
            seen.push_str(&line);
            let cmd = line.to_ascii_uppercase();
            if cmd.starts_with("EHLO") {
                write!(out, "250-sink\r\n250 8BITMIME\r\n").unwrap();
            } else if cmd.starts_with("DATA") {
                write!(out, "354 go on\r\n").unwrap();
                loop {
                    line.clear();
                    lines.read_line(&mut line).unwrap();
                    if line == ".\r\n" {
                        break;
                    }
                    seen.push_str(&line);
                }
                write!(out, "250 queued\r\n").unwrap();
            } else if cmd.starts_with("QUIT") {
                write!(out, "221 bye\r\n").unwrap();
                break;
            } else {
                write!(out, "250 ok\r\n").unwrap();
            }
        }
        seen
    });
    let send = host::identity::smtp_mailer(
        &format!("smtp://127.0.0.1:{port}"),
        "Rose Ash <noreply@coop.example>",
    )
    .unwrap();
    let mail = fed::accounts::Mail {
        key: "k".into(),
        to: "ada@example.org".into(),
        subject: "Confirm your email address".into(),
        text: "Open https://id.example/verify?token=abc".into(),
    };
    assert!(send(&mail), "the mail was accepted");
    let seen = server.join().unwrap();
    assert!(seen.contains("MAIL FROM:<noreply@coop.example>"), "{seen}");
    assert!(seen.contains("RCPT TO:<ada@example.org>"), "{seen}");
    assert!(
        seen.contains("Subject: Confirm your email address"),
        "{seen}"
    );
    assert!(seen.contains("verify?token=abc"), "{seen}");
    // A refused connection is a failure to retry, not a panic.
    let refused = host::identity::smtp_mailer("smtp://127.0.0.1:1", "a@b.example").unwrap();
    assert!(!refused(&mail));
}
