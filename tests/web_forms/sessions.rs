//! The pages' CSRF tokens (signed by the gateway), the refusal of posts
//! from other origins, `Secure` cookies over TLS, and the agents' sessions
//! in Redis.

use std::time::Duration;

use redis::AsyncCommands;

use super::*;

/// Everything under this test's prefix in Redis.
async fn keys_of(app: &TestApp) -> Vec<String> {
    let mut conn = app.conn().await;
    conn.keys(format!("{}:*", app.prefix)).await.expect("KEYS")
}

#[tokio::test]
async fn a_forged_token_or_another_origin_is_refused_and_nothing_is_stored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut app = common::spawn_app(&config(dir.path(), "submissions_per_minute = 100")).await;
    let form = open_form(&app).await;
    // The token is the gateway's: nonce, expiry and MAC, not bare hex.
    let token = form.cookie.trim_start_matches("aduan_csrf=");
    assert_eq!(token, form.csrf);
    assert_eq!(token.split('.').count(), 3, "{token}");

    // A token of the old shape, or of the new one, that the gateway never
    // signed, sent in both the cookie and the field: refused.
    let future = chrono::Utc::now().timestamp() + 3600;
    for forged in [
        "a".repeat(32),
        format!("{}.{future}.{}", "a".repeat(32), "b".repeat(64)),
        format!(
            "{}.{future}.{}",
            &token[..32],
            token.rsplit('.').next().unwrap()
        ),
    ] {
        let cookie = format!("aduan_csrf={forged}");
        let mut fields = complete(&form);
        fields.retain(|(k, _)| *k != "csrf");
        fields.push(("csrf", forged.as_str()));
        let (status, page) = post_form(&app, &cookie, &fields, Some(JPEG)).await;
        assert_eq!(status, 403, "{forged}");
        assert!(page.contains("value=\"Siti Rahayu\""));
    }

    // A good token, sent from another site: refused before anything else.
    let (content_type, body) = multipart(&complete(&form), Some(JPEG));
    for (name, value) in [
        ("origin", "https://evil.example"),
        ("origin", "null"),
        ("referer", "https://evil.example/lapor"),
    ] {
        let response = app
            .client
            .post(app.url("/lapor/bogor-311"))
            .header("content-type", content_type.clone())
            .header("cookie", form.cookie.clone())
            .header(name, value)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{name}: {value}");
        let page = response.text().await.unwrap();
        assert!(!page.contains("Siti Rahayu"), "nothing of the post is read");
    }
    let sign_in = app
        .client
        .post(app.url("/agent/sign-in"))
        .header("cookie", form.cookie.clone())
        .header("origin", "https://evil.example")
        .form(&[("csrf", form.csrf.as_str()), ("token", TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(sign_in.status(), 403);
    assert!(
        cookies(&sign_in)
            .iter()
            .all(|c| !c.starts_with("aduan_agent="))
    );

    assert_eq!(app.stream_len().await, 0, "no complaint");
    let stored = keys_of(&app).await;
    assert!(
        stored
            .iter()
            .all(|k| !k.contains(":dedup:") && !k.contains(":web:session:")),
        "nothing but the pages' key: {stored:?}"
    );
    let blobs = std::fs::read_dir(dir.path().join("sha256")).map_or(0, |d| d.count());
    assert_eq!(blobs, 0, "no photo stored");

    // The same post from the gateway's own origin, and with none: taken.
    let own = app.base_url.clone();
    let response = app
        .client
        .post(app.url("/lapor/bogor-311"))
        .header("content-type", content_type)
        .header("cookie", form.cookie.clone())
        .header("origin", own.as_str())
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let mut fields = complete(&form);
    fields.retain(|(k, _)| *k != "description");
    fields.push(("description", "Lampu jalan mati di depan pasar."));
    let (status, _) = post_form(&app, &form.cookie, &fields, None).await;
    assert_eq!(status, 201);
    assert_eq!(app.tracked_complaints().await.len(), 2);

    // The pages' key is stored once, for every replica.
    let mut conn = app.conn().await;
    let key: String = conn.get(format!("{}:web:key", app.prefix)).await.unwrap();
    assert_eq!(key.len(), 64);
    app.stop().await;
}

#[tokio::test]
async fn a_replica_accepts_the_tokens_of_another() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ns = common::unique("webkey");
    let text = config(dir.path(), "");
    let mut first = common::spawn_replica(&text, &ns, "a").await;
    let mut second = common::spawn_replica(&text, &ns, "b").await;
    let form = open_form(&first).await;
    let (status, page) = post_form(&second, &form.cookie, &complete(&form), None).await;
    assert_eq!(status, 201, "{page}");
    first.stop().await;
    second.stop().await;
}

#[tokio::test]
async fn cookies_carry_secure_when_the_request_came_over_tls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut app = common::spawn_app(&config(dir.path(), "")).await;
    let plain = app.get("/lapor/bogor-311").await;
    assert!(cookies(&plain).iter().all(|c| !c.contains("Secure")));
    let tls = app
        .client
        .get(app.url("/lapor/bogor-311"))
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    let set = cookies(&tls);
    assert!(
        !set.is_empty() && set.iter().all(|c| c.contains("; Secure")),
        "{set:?}"
    );
    app.stop().await;
}

/// Signs in with `csrf_cookie` and `csrf`; the session cookie's `name=value`.
async fn sign_in(app: &TestApp, client: &reqwest::Client, csrf_cookie: &str, csrf: &str) -> String {
    let signed = client
        .post(app.url("/agent/sign-in"))
        .header("cookie", csrf_cookie)
        .form(&[("csrf", csrf), ("token", TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), 303);
    let session = cookies(&signed)
        .into_iter()
        .find(|c| c.starts_with("aduan_agent="))
        .expect("a session cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/agent", "Max-Age=7200"] {
        assert!(session.contains(attribute), "{session}");
    }
    session.split(';').next().unwrap().to_string()
}

/// Whether `/agent` shows the transcript form (signed in) to `cookie`.
async fn signed_in(app: &TestApp, cookie: &str) -> bool {
    let page = app
        .client
        .get(app.url("/agent"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    page.contains("name=\"call_id\"")
}

#[tokio::test]
async fn an_agent_session_is_a_random_id_kept_in_redis_and_ended_by_sign_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut app = common::spawn_app(&config(dir.path(), "agent_session_hours = 2")).await;
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = app.get("/agent").await;
    let csrf_cookie = cookies(&page)[0].split(';').next().unwrap().to_string();
    let csrf = hidden(&page.text().await.unwrap(), "csrf");
    let session = sign_in(&app, &no_redirects, &csrf_cookie, &csrf).await;
    let id = session.trim_start_matches("aduan_agent=");

    // The cookie is not the token, in any spelling.
    assert_ne!(id, TOKEN);
    assert_ne!(id, hex::encode(TOKEN));
    assert!(!id.contains(TOKEN) && !id.contains(&hex::encode(TOKEN)));
    assert_eq!(id.len(), 64);

    // Redis holds it by its digest, for the session's hours, without the token.
    let key = format!(
        "{}:web:session:{}",
        app.prefix,
        aduan_adapter::verify::sha256_hex(id.as_bytes())
    );
    let mut conn = app.conn().await;
    let stored: String = conn.get(&key).await.expect("the session in Redis");
    assert!(stored.contains("cc-bogor"), "{stored}");
    assert!(!stored.contains(TOKEN) && !stored.contains(&hex::encode(TOKEN)));
    assert!(!stored.contains(&aduan_adapter::verify::sha256_hex(TOKEN.as_bytes())));
    let ttl: i64 = conn.ttl(&key).await.unwrap();
    assert!((7200 - 60..=7200).contains(&ttl), "TTL {ttl}");
    let both = format!("{csrf_cookie}; {session}");
    assert!(signed_in(&app, &both).await);
    // The old cookie, the token hex-encoded, opens nothing any more.
    assert!(
        !signed_in(
            &app,
            &format!("{csrf_cookie}; aduan_agent={}", hex::encode(TOKEN))
        )
        .await
    );

    // Signing out deletes the session: the same cookie sends nothing.
    let out = no_redirects
        .post(app.url("/agent/sign-out"))
        .header("cookie", both.clone())
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
    assert!(!conn.exists::<_, bool>(&key).await.unwrap());
    let sent = app
        .client
        .post(app.url("/agent"))
        .header("cookie", both.clone())
        .form(&[
            ("csrf", csrf.as_str()),
            ("agent_id", "agt-017"),
            ("call_id", "call-after-sign-out"),
            ("transcript", "Penelepon: Air PDAM mati."),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 401);
    assert_eq!(app.stream_len().await, 0);

    // A session ends when its key expires.
    let session = sign_in(&app, &no_redirects, &csrf_cookie, &csrf).await;
    let both = format!("{csrf_cookie}; {session}");
    assert!(signed_in(&app, &both).await);
    let id = session.trim_start_matches("aduan_agent=");
    let key = format!(
        "{}:web:session:{}",
        app.prefix,
        aduan_adapter::verify::sha256_hex(id.as_bytes())
    );
    let _: bool = conn.pexpire(&key, 1).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!signed_in(&app, &both).await);
    app.stop().await;
}
