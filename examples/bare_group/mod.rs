//! What the bare consumers of the benchmarks share: their two connections
//! and their consumer group, `bare`, on the stream they read.

use std::time::Duration;

use redis::aio::MultiplexedConnection;

/// A connection for blocking reads (whose answer may take the whole block
/// time), a second for everything else, and the group `bare` on `stream`
/// (created with the stream when missing; already there is fine).
pub async fn connect(
    redis_url: String,
    stream: &str,
) -> (MultiplexedConnection, MultiplexedConnection) {
    let client = redis::Client::open(redis_url).expect("redis url");
    // A blocking read must not be given up on before Redis answers it, or
    // the entries it delivered are left pending and never handled.
    let config =
        redis::AsyncConnectionConfig::new().set_response_timeout(Some(Duration::from_secs(10)));
    let mut reader = client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .expect("redis");
    let conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let _: Result<(), _> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(stream)
        .arg("bare")
        .arg("0")
        .arg("MKSTREAM")
        .query_async(&mut reader)
        .await;
    (reader, conn)
}
