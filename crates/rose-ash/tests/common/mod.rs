//! What the tests that run `rose-ash serve` as child processes share.

#![allow(dead_code)] // each test binary uses part of it

use std::net::TcpListener;
use std::process::Child;
use std::time::{Duration, Instant};

/// A server process, killed when dropped (even when a test fails).
pub struct Server(pub Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `N` distinct ports nobody listens on right now. The listeners are all
/// held until every port is chosen: asked for one at a time, released at
/// once, the kernel could hand the same port out twice (it did, and two
/// of a test's servers then fought over it).
pub fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    std::array::from_fn(|i| listeners[i].local_addr().unwrap().port())
}

/// Waits until `url` answers at all (up to a minute).
pub async fn wait_up(url: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if reqwest::get(url).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url} did not come up");
}
