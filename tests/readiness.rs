//! `/readyz` while Redis is away and after it returns: `spooling` with the
//! spool's depth, then `ready` once Redis answers and the spool is forwarded,
//! asked anew on each call rather than after a reconnection backoff.

mod common;

use std::time::{Duration, Instant};

use common::private_redis::PrivateRedis;
use serde_json::{Value, json};

const TOKEN: &str = "uji-token-siap";

async fn ready(app: &common::TestApp) -> (u16, Value) {
    let resp = app
        .client
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("readyz");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("json"))
}

#[tokio::test]
async fn readiness_follows_redis_and_the_spool() {
    let mut redis = PrivateRedis::stopped();
    let app = common::spawn_app_with(
        &format!(
            "[[instances]]\nname = \"cc-siap\"\nkind = \"transcript\"\ntokens = [\"{TOKEN}\"]\n"
        ),
        &redis.url(),
        &common::unique("ready"),
    )
    .await;
    let (status, body) = ready(&app).await;
    assert_eq!(
        (status, body["state"].clone()),
        (200, json!("spooling")),
        "{body}"
    );
    for n in 0..3 {
        let resp = app
            .client
            .post(app.url("/v1/transcripts"))
            .bearer_auth(TOKEN)
            .json(&json!({
                "call_id": format!("SIAP-{n}"),
                "agent": {"id": "AG-9"},
                "text": "Lampu lalu lintas di simpang empat mati."
            }))
            .send()
            .await
            .expect("post");
        assert_eq!(resp.status(), 201);
    }
    let (_, body) = ready(&app).await;
    assert_eq!(body["redis"], "unreachable");
    assert_eq!(body["spool"]["depth"], 3, "{body}");
    assert!(body["spool"]["oldest_age_seconds"].is_number(), "{body}");

    redis.restart().await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, body) = ready(&app).await;
        if body["state"] == "ready" {
            assert_eq!(status, 200);
            assert_eq!(body["redis"], "ok");
            assert_eq!(body["spool"]["depth"], 0);
            break;
        }
        assert!(
            ["spooling", "catching_up"].contains(&body["state"].as_str().unwrap_or("")),
            "{body}"
        );
        assert!(
            Instant::now() < deadline,
            "not ready 5 s after Redis returned: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(app.stream_len().await, 3);
}
