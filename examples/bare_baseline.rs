//! The bare baseline of the performance targets: an axum handler that does one
//! `XADD` of the raw body and answers 200. Every figure in
//! `docs/performance.md` is measured beside this one, in the same run.
//!
//! ```text
//! bare_baseline <listen addr> <redis url> <stream>
//! ```

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use redis::aio::ConnectionManager;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:8090".into());
    let url = args
        .next()
        .unwrap_or_else(|| "redis://127.0.0.1:6379".into());
    let stream = args.next().unwrap_or_else(|| "bench:baseline".into());
    let conn = ConnectionManager::new(redis::Client::open(url)?).await?;
    let app = Router::new()
        .route("/ingest", post(ingest))
        .with_state((conn, stream));
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    axum::serve(listener, app).await?;
    Ok(())
}

async fn ingest(
    State((mut conn, stream)): State<(ConnectionManager, String)>,
    body: Bytes,
) -> StatusCode {
    let added: redis::RedisResult<String> = redis::cmd("XADD")
        .arg(&stream)
        .arg("*")
        .arg("body")
        .arg(body.as_ref())
        .query_async(&mut conn)
        .await;
    match added {
        Ok(_) => StatusCode::OK,
        Err(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}
