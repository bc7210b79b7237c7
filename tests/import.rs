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
