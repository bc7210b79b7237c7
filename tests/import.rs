//! `aduan import-transcripts`: summary, bad lines skipped with their line
//! numbers, and idempotence when the same file is imported again.

mod common;

use serde_json::json;

fn run_import(config: &std::path::Path, file: &std::path::Path) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_aduan"))
        .args(["import-transcripts", "--instance", "cc-depok", "--config"])
        .arg(config)
        .arg(file)
        .output()
        .expect("run aduan");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[tokio::test]
async fn import_reports_every_line_and_is_idempotent() {
    let ns = common::unique("import");
    let stream = format!("test:{ns}:complaints");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("aduan.toml");
    std::fs::write(
        &config,
        format!(
            "[redis]\nurl = \"{}\"\nstream = \"{stream}\"\nkey_prefix = \"test:{ns}\"\n\n\
             [[instances]]\nname = \"cc-depok\"\nkind = \"transcript\"\ntokens = [\"token-depok-uji\"]\n",
            common::redis_url()
        ),
    )
    .expect("config");

    let call = |id: &str, text: &str| {
        json!({
            "call_id": id,
            "agent": {"id": "AG-201", "name": "Dewi Lestari"},
            "caller": {"phone": "0813-1111-2222", "name": "Ahmad Fauzi"},
            "started_at": "2026-11-21T09:00:00+07:00",
            "text": text
        })
        .to_string()
    };
    let lines = [
        call(
            "DPK-1",
            "Lampu jalan di Jalan Margonda mati sejak seminggu.",
        ),
        "{ bukan json".to_string(),
        call("DPK-2", "Sampah menumpuk di pasar Depok Lama."),
        String::new(),
        call(
            "DPK-1",
            "Lampu jalan di Jalan Margonda mati sejak seminggu.",
        ),
        json!({"agent": {"id": "AG-201"}, "text": "tanpa call id"}).to_string(),
        call("DPK-3", "Air PDAM keruh di perumahan Sukmajaya."),
    ];
    let file = dir.path().join("export.jsonl");
    std::fs::write(&file, lines.join("\n") + "\n").expect("jsonl");

    let (code, out) = run_import(&config, &file);
    assert_eq!(code, 2, "some lines were rejected:\n{out}");
    assert!(
        out.contains("accepted: 3, duplicates: 1, rejected: 2"),
        "{out}"
    );
    assert!(out.contains("line 2:"), "{out}");
    assert!(out.contains("line 6:") && out.contains("call_id"), "{out}");

    let (code, out) = run_import(&config, &file);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("accepted: 0, duplicates: 4, rejected: 2"),
        "{out}"
    );

    let client = redis::Client::open(common::redis_url()).expect("url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let len: usize = redis::cmd("XLEN")
        .arg(&stream)
        .query_async(&mut conn)
        .await
        .expect("xlen");
    assert_eq!(len, 3);
}

fn write_config(
    dir: &std::path::Path,
    redis_url: &str,
    ns: &str,
    extra: &str,
) -> std::path::PathBuf {
    let config = dir.join(format!("aduan-{}.toml", common::unique("cfg")));
    std::fs::write(
        &config,
        format!(
            "[redis]\nurl = \"{redis_url}\"\nstream = \"test:{ns}:complaints\"\nkey_prefix = \"test:{ns}\"\ncommand_timeout_ms = 500\n\n\
             [spool]\ndir = \"{}\"\n\n{extra}\n\
             [[instances]]\nname = \"cc-depok\"\nkind = \"transcript\"\ntokens = [\"token-depok-uji\"]\n",
            dir.join("spool").display()
        ),
    )
    .expect("config");
    config
}

fn calls(dir: &std::path::Path, ids: &[&str]) -> std::path::PathBuf {
    let lines: Vec<String> = ids
        .iter()
        .map(|id| {
            json!({
                "call_id": id,
                "agent": {"id": "AG-305", "name": "Rina Wulandari"},
                "caller": {"phone": "0857-3333-4444", "name": "Bambang Sutrisno"},
                "started_at": "2026-11-23T10:00:00+07:00",
                "text": "Saluran air di Jalan Juanda tersumbat dan meluap setiap hujan."
            })
            .to_string()
        })
        .collect();
    let file = dir.join(format!("{}.jsonl", common::unique("export")));
    std::fs::write(&file, lines.join("\n") + "\n").expect("jsonl");
    file
}

#[tokio::test]
async fn while_redis_is_down_lines_are_spooled_and_forwarded_later() {
    let ns = common::unique("import-spool");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut redis = common::private_redis::PrivateRedis::stopped();
    let config = write_config(dir.path(), &redis.url(), &ns, "");
    let file = calls(dir.path(), &["DPK-S1", "DPK-S2"]);

    let (code, out) = run_import(&config, &file);
    assert_eq!(code, 0, "every line accepted, into the spool:\n{out}");
    assert!(
        out.contains("accepted: 2, duplicates: 0, rejected: 0"),
        "{out}"
    );
    assert!(out.contains("spooled: 2"), "the summary says so:\n{out}");

    redis.restart().await;
    let drained = std::process::Command::new(env!("CARGO_BIN_EXE_aduan"))
        .args(["spool", "drain", "--config"])
        .arg(&config)
        .output()
        .expect("run aduan");
    assert!(drained.status.success(), "{drained:?}");
    let mut conn = redis.connection().await;
    let len: usize = redis::cmd("XLEN")
        .arg(format!("test:{ns}:complaints"))
        .query_async(&mut conn)
        .await
        .expect("xlen");
    assert_eq!(len, 2, "both spooled lines reach the stream");

    let (code, out) = run_import(&config, &file);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("accepted: 0, duplicates: 2, rejected: 0") && !out.contains("spooled"),
        "{out}"
    );
}

#[tokio::test]
async fn the_per_sender_limit_applies_to_imports_only_when_asked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ids = ["DPK-L1", "DPK-L2", "DPK-L3"];

    let ns = common::unique("import-limit-off");
    let config = write_config(
        dir.path(),
        &common::redis_url(),
        &ns,
        "[limits]\nper_sender_per_minute = 1\n",
    );
    let (code, out) = run_import(&config, &calls(dir.path(), &ids));
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("accepted: 3, duplicates: 0, rejected: 0"),
        "{out}"
    );

    let ns = common::unique("import-limit-on");
    let on = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        on.path(),
        &common::redis_url(),
        &ns,
        "[limits]\nper_sender_per_minute = 1\nimport_per_sender = true\n",
    );
    let (code, out) = run_import(&config, &calls(on.path(), &ids));
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("accepted: 1, duplicates: 0, rejected: 2"),
        "{out}"
    );
    assert!(
        out.contains("line 2:") && out.contains("sender_rate"),
        "{out}"
    );
}
