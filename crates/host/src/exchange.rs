//! What crosses between the HTTP side (many threads) and an SX worker
//! (one thread, values that are not `Send`): plain owned data.

use bytes::Bytes;

/// A request, as the HTTP side read it.
#[derive(Debug)]
pub struct HttpRequest {
    pub method: String,
    /// The path, still percent-encoded.
    pub path: String,
    /// The query string without `?` (empty if none).
    pub query: String,
    /// Header names in lowercase, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    /// This client's CSRF token (from its cookie, or freshly made).
    pub csrf_token: String,
    /// Whether the request carried the matching token (always true for
    /// GET, HEAD and OPTIONS).
    pub csrf_ok: bool,
    /// Whether the client reached us over TLS (cookies get `Secure`).
    pub secure: bool,
    /// The peer's address (for rate limits and logs), if known.
    pub remote_addr: Option<std::net::SocketAddr>,
    /// Set when the HTTP side already refused the request (body too large,
    /// unreadable): the worker only renders the error page.
    pub refused: Option<Refused>,
}

/// A refusal decided before the request reached SX.
#[derive(Debug, Clone)]
pub struct Refused {
    pub status: u16,
    pub title: &'static str,
    pub message: String,
}

impl HttpRequest {
    /// The first header named `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the browser runtime sent it and wants SX wire back.
    pub fn wants_wire(&self) -> bool {
        self.header("sx-request") == Some("true")
    }
}

/// A response, ready to send.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl HttpResponse {
    pub fn new(status: u16, content_type: &str, body: impl Into<Bytes>) -> HttpResponse {
        HttpResponse {
            status,
            headers: vec![("content-type".to_owned(), content_type.to_owned())],
            body: body.into(),
        }
    }

    pub fn text(status: u16, body: impl Into<String>) -> HttpResponse {
        HttpResponse::new(status, "text/plain; charset=utf-8", body.into())
    }

    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> HttpResponse {
        self.headers.push((name.to_owned(), value.into()));
        self
    }
}
