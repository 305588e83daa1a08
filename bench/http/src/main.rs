//! `http-ceiling ADDR FILE`: serves FILE's bytes as text/html at every path,
//! the fastest an axum server can answer with a page already in memory.

use axum::http::header;
use axum::response::IntoResponse;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().ok_or("usage: http-ceiling ADDR FILE")?;
    let file = args.next().ok_or("usage: http-ceiling ADDR FILE")?;
    let body: &'static [u8] = Box::leak(std::fs::read(file)?.into_boxed_slice());
    let app = axum::Router::new().fallback(move || async move {
        ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
    });
    let listener = tokio::net::TcpListener::bind(addr).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
