//! The spool's own tests: order, caps, quarantine, reopening.

use super::*;
use aduan_adapter::{Channel, Context, Timestamp};

fn complaint(external_id: &str) -> Complaint {
    let ctx = Context {
        instance: "cc-depok",
        received_at: Timestamp(chrono::Utc::now()),
        keep_raw: false,
    };
    let mut c = Complaint::new(
        &ctx,
        Channel::CallCenter,
        "transcript",
        external_id,
        "agent:AG-7",
    );
    c.id = ulid::Ulid::generate().to_string();
    c.text = "Jalan berlubang di depan SDN 3 Cibinong".into();
    c
}

fn config(dir: &Path) -> SpoolConfig {
    SpoolConfig {
        dir: dir.to_path_buf(),
        ..SpoolConfig::default()
    }
}

fn read_all(spool: &Spool) -> Vec<Complaint> {
    with_db(&spool.db, |db| read_oldest(db, usize::MAX))
        .expect("read")
        .into_iter()
        .filter_map(
            |(_, b)| match serde_json::from_slice::<Record>(&b).expect("record").body {
                Body::Complaint { complaint, .. } => Some(complaint),
                Body::Event(_) => None,
            },
        )
        .collect()
}

/// The status once the writer thread of a dropped spool let go of the file.
async fn status_when_closed(cfg: &SpoolConfig) -> Status {
    for _ in 0..250 {
        match Spool::status_of(cfg) {
            Ok(s) => return s,
            Err(SpoolError::InUse { .. }) => tokio::time::sleep(Duration::from_millis(20)).await,
            Err(e) => panic!("status: {e}"),
        }
    }
    panic!("spool file still in use");
}

#[tokio::test]
async fn concurrent_writes_are_kept_in_order_and_survive_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path());
    let spool = Spool::open(&cfg).expect("open");
    assert!(spool.is_empty());
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..200 {
        let spool = spool.clone();
        tasks.spawn(async move { spool.put(&[complaint(&format!("call-{i}"))]).await });
    }
    while let Some(r) = tasks.join_next().await {
        r.expect("task").expect("put");
    }
    spool
        .put(&[complaint("last-a"), complaint("last-b")])
        .await
        .expect("put");
    assert_eq!(spool.status().depth, 202);
    assert!(spool.status().oldest_age_seconds.is_some());
    let all = read_all(&spool);
    assert_eq!(all[200].external_id, "last-a");
    assert_eq!(all[201].external_id, "last-b");
    drop(spool);
    // The writer thread lets go of the file once the last handle is dropped.
    let reopened = loop {
        match Spool::open(&cfg) {
            Ok(s) => break s,
            Err(SpoolError::InUse { .. }) => tokio::time::sleep(Duration::from_millis(20)).await,
            Err(e) => panic!("reopen: {e}"),
        }
    };
    assert_eq!(reopened.status().depth, 202);
    assert_eq!(read_all(&reopened).len(), 202);
    assert!(matches!(
        Spool::status_of(&cfg),
        Err(SpoolError::InUse { .. })
    ));
    drop(reopened);
    let status = status_when_closed(&cfg).await;
    assert_eq!(status.depth, 202);
    assert_eq!(status.quarantined, 0);
}

/// A spool in a fresh directory with `cfg`'s settings.
fn open_in_tempdir(
    cfg: impl FnOnce(SpoolConfig) -> SpoolConfig,
) -> (tempfile::TempDir, Arc<Spool>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let spool = Spool::open(&cfg(config(dir.path()))).expect("open");
    (dir, spool)
}

#[tokio::test]
async fn past_the_cap_writes_are_refused_and_nothing_is_kept() {
    let (_dir, spool) = open_in_tempdir(|c| SpoolConfig {
        max_records: 3,
        ..c
    });
    spool
        .put(&[complaint("a"), complaint("b")])
        .await
        .expect("room for two");
    assert!(spool.writable());
    let err = spool
        .put(&[complaint("c"), complaint("d")])
        .await
        .expect_err("no room for two more");
    assert!(matches!(err, SpoolError::Full("max_records")), "{err}");
    spool.put(&[complaint("c")]).await.expect("room for one");
    assert!(!spool.writable());
    assert_eq!(
        read_all(&spool)
            .iter()
            .map(|c| c.external_id.as_str())
            .collect::<Vec<_>>(),
        ["a", "b", "c"]
    );
}

#[tokio::test]
async fn byte_cap_is_enforced() {
    let (_dir, spool) = open_in_tempdir(|c| SpoolConfig {
        max_bytes: 100,
        ..c
    });
    let err = spool.put(&[complaint("a")]).await.expect_err("too big");
    assert!(matches!(err, SpoolError::Full("max_bytes")), "{err}");
    assert!(spool.is_empty());
}

#[tokio::test]
async fn an_undecodable_record_is_quarantined_not_dropped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path());
    let spool = Spool::open(&cfg).expect("open");
    spool.put_raw_for_test(b"{not json").await.expect("raw");
    // Redis at a closed port: the broken record is still moved aside, the good one waits.
    spool.put(&[complaint("good")]).await.expect("put");
    let redis = crate::redis::Redis::new(&crate::settings::RedisConfig {
        url: aduan_adapter::Secret::literal("redis://127.0.0.1:1"),
        command_timeout_ms: 200,
        ..Default::default()
    })
    .expect("redis url");
    let language = crate::language::LanguageDetector::default();
    let target = Target {
        redis: &redis,
        language: &language,
        reports: None,
    };
    let moved = spool.forward_once(target).await.expect("quarantine counts");
    assert_eq!(moved, 1);
    let status = spool.status();
    assert_eq!((status.depth, status.quarantined), (1, 1));
    assert!(matches!(
        spool.forward_once(target).await,
        Err(SpoolError::Redis(_))
    ));
    assert_eq!(read_all(&spool)[0].external_id, "good");
    drop(spool);
    let status = status_when_closed(&cfg).await;
    assert_eq!((status.depth, status.quarantined), (1, 1));
}

#[test]
fn zero_limits_are_reported() {
    let cfg = SpoolConfig {
        max_records: 0,
        forward_batch: 0,
        ..SpoolConfig::default()
    };
    let keys: Vec<_> = cfg.problems().into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, ["spool.max_records", "spool.forward_batch"]);
}

#[tokio::test]
async fn the_file_gives_back_its_room_once_emptied_and_compacted() {
    let (dir, spool) = open_in_tempdir(|c| c);
    let batch: Vec<Complaint> = (0..200).map(|i| complaint(&format!("call-{i}"))).collect();
    for _ in 0..20 {
        spool.put(&batch).await.expect("put");
    }
    let file = dir.path().join(crate::settings::SPOOL_FILE_NAME);
    let full = std::fs::metadata(&file).expect("file").len();
    let seqs: Vec<u64> = with_db(&spool.db, |db| read_oldest(db, usize::MAX))
        .expect("read")
        .into_iter()
        .map(|(seq, _)| seq)
        .collect();
    assert_eq!(seqs.len(), 4000);
    with_db(&spool.db, |db| {
        forward::remove_and_quarantine(db, &seqs, &[])
    })
    .expect("remove");
    spool.compact().await.expect("compact");
    let compacted = std::fs::metadata(&file).expect("file").len();
    assert!(
        compacted * 4 < full,
        "{full} bytes before, {compacted} after compaction"
    );
    // Still a working spool.
    spool.put(&[complaint("after")]).await.expect("put");
    assert_eq!(
        with_db(&spool.db, |db| read_oldest(db, 10))
            .expect("read")
            .len(),
        1
    );
}

fn opt_out(to: &str) -> Event {
    Event::Consents {
        instance: "sms-jabar".into(),
        channel: Channel::Sms,
        consents: vec![aduan_adapter::Consent {
            to: to.into(),
            opted_out: true,
            keyword: "BERHENTI".into(),
        }],
    }
}

#[tokio::test]
async fn events_keep_their_place_among_the_complaints() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spool = Spool::open(&config(dir.path())).expect("open");
    spool.put(&[complaint("a")]).await.expect("put");
    spool
        .put_event(&opt_out("+6281377788899"))
        .await
        .expect("event");
    spool.put(&[complaint("b")]).await.expect("put");
    assert_eq!(spool.status().depth, 3);
    let bodies: Vec<Body> = with_db(&spool.db, |db| read_oldest(db, usize::MAX))
        .expect("read")
        .into_iter()
        .map(|(_, b)| serde_json::from_slice::<Record>(&b).expect("record").body)
        .collect();
    assert!(
        matches!(&bodies[..], [
            Body::Complaint { complaint: a, part: None },
            Body::Event(event),
            Body::Complaint { complaint: b, part: None },
        ] if a.external_id == "a" && *event == opt_out("+6281377788899") && b.external_id == "b"),
        "out of order"
    );
}

#[test]
fn records_of_earlier_versions_decode_and_a_record_of_neither_kind_does_not() {
    let c = serde_json::to_value(complaint("lama")).expect("json");
    let old = serde_json::json!({"spooled_at_ms": 1, "complaint": c});
    let decoded: Record = serde_json::from_value(old).expect("an earlier record");
    assert!(matches!(decoded.body, Body::Complaint { part: None, .. }));
    let event = serde_json::to_value(opt_out("+62813")).expect("json");
    for broken in [
        serde_json::json!({"spooled_at_ms": 1}),
        serde_json::json!({"spooled_at_ms": 1, "complaint": c, "event": event}),
    ] {
        assert!(serde_json::from_value::<Record>(broken).is_err());
    }
}
