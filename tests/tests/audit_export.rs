//! The audit export for SIEMs (issue 32): `GET /api/v1/audit/export` in each format, resumable by sequence, and
//! checked by the independent verifier `tests/verify_chain.py` (Python standard library only) from the export alone.

use std::path::Path;

use rancher_access_tests::server::{with_pending_request, Api};
use serde_json::{json, Value};

/// python3, when the machine has it.
fn python() -> Option<&'static str> {
    std::process::Command::new("python3")
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|_| "python3")
}

/// Runs the verifier on `file`: (exit code, stdout + stderr).
fn verify(py: &str, file: &Path, extra: &[&str]) -> (i32, String) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/verify_chain.py");
    let out = std::process::Command::new(py)
        .arg(script)
        .arg(file)
        .args(extra)
        .output()
        .expect("python3 runs");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

async fn export(base: &str, token: &str, query: &str) -> (u16, String, String) {
    let r = reqwest::Client::new()
        .get(format!("{base}/api/v1/audit/export{query}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap_or("").to_string())
        .unwrap_or_default();
    (r.status().as_u16(), ct, r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_exports_in_each_format_resumes_and_verifies_offline() {
    let (sim, srv, id) = with_pending_request("export me: ü \"quoted\"\nline two").await;
    let t = sim.tokens().clone();
    let admin = Api::new(srv.url(), Some(&t.admin));
    let (st, done) = admin.post(&format!("/api/v1/requests/{id}/approve"), json!({})).await;
    assert_eq!(st, 200, "{done}");
    let (_, head) = admin.get("/api/v1/audit/verify").await;
    let head_seq = head["head"]["seq"].as_u64().unwrap();
    let head_hash = head["head"]["hash"].as_str().unwrap().to_string();
    assert!(head_seq >= 4, "a few entries to export: {head}");

    let dir = tempfile::tempdir().unwrap();
    let py = python();
    if py.is_none() {
        eprintln!("NOTE: python3 is not on this machine; the offline verifier (tests/verify_chain.py) was not run");
    }
    for format in ["jsonl", "ocsf", "cloudevents"] {
        let (st, ct, body) = export(srv.url(), &t.admin, &format!("?format={format}")).await;
        assert_eq!((st, ct.as_str()), (200, "application/x-ndjson"), "{body}");
        let lines: Vec<Value> = body.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len() as u64, head_seq, "{format}: every entry, one a line");
        let file = dir.path().join(format!("export.{format}"));
        std::fs::write(&file, &body).unwrap();
        if let Some(py) = py {
            let (code, out) = verify(py, &file, &["--expect-head", &format!("{head_seq}:{head_hash}")]);
            assert_eq!(code, 0, "{format}: {out}");
            assert!(out.contains(&format!("ok: {head_seq} entries")), "{out}");
        }
    }

    // Resumed after seq 2: the rest, and it still verifies (from its first entry's link).
    let (st, _, rest) = export(srv.url(), &t.admin, "?format=jsonl&after=2").await;
    assert_eq!(st, 200);
    let first: Value = serde_json::from_str(rest.lines().next().unwrap()).unwrap();
    assert_eq!(first["seq"], json!(3));
    assert_eq!(rest.lines().count() as u64, head_seq - 2);

    // One byte changed in the export: the verifier says which line.
    if let Some(py) = py {
        let (_, _, body) = export(srv.url(), &t.admin, "?format=jsonl").await;
        let tampered = body.replacen("export me", "export mE", 1);
        assert_ne!(tampered, body);
        let file = dir.path().join("tampered.jsonl");
        std::fs::write(&file, tampered).unwrap();
        let (code, out) = verify(py, &file, &[]);
        assert_eq!(code, 1, "{out}");
        assert!(out.contains("was changed"), "{out}");
        let rest_file = dir.path().join("rest.jsonl");
        std::fs::write(&rest_file, &rest).unwrap();
        let (code, out) = verify(py, &rest_file, &[]);
        assert_eq!(code, 0, "{out}");
    }

    // Admins only; an unknown format is named.
    let (st, _, body) = export(srv.url(), &t.user, "").await;
    assert_eq!(st, 403, "{body}");
    let (st, _, body) = export(srv.url(), &t.admin, "?format=csv").await;
    assert_eq!(st, 400, "{body}");
    assert!(body.contains("jsonl, ocsf or cloudevents"), "{body}");
}

/// `rancherctl approvals audit --export FORMAT [--since SEQ]` on the local store: the same lines, resumable, and
/// verified offline.
#[test]
fn the_cli_exports_the_local_audit_log() {
    use rancher_access_tests::cli::SimCli;
    let s = SimCli::start(rancher_sim::RancherVersion::V2_13, 2);
    for wf in ["create-global-role-binding", "grant-project-role"] {
        s.run(&["workflows", "install", wf]).expect_code(0);
    }
    let all = s
        .run(&["approvals", "audit", "--export", "jsonl"])
        .expect_code(0)
        .stdout
        .clone();
    let seqs: Vec<u64> = all
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["seq"].as_u64().unwrap())
        .collect();
    assert!(seqs.len() >= 2, "{all}");
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    let rest = s
        .run(&["approvals", "audit", "--export", "cloudevents", "--since", "1"])
        .expect_code(0)
        .stdout
        .clone();
    let first: Value = serde_json::from_str(rest.lines().next().unwrap()).unwrap();
    assert_eq!(
        (first["specversion"].as_str(), &first["data"]["seq"]),
        (Some("1.0"), &json!(2))
    );
    let ocsf = s
        .run(&["approvals", "audit", "--export", "ocsf"])
        .expect_code(0)
        .stdout
        .clone();
    assert_eq!(ocsf.lines().count(), seqs.len());
    let bad = s.run(&["approvals", "audit", "--export", "xml"]);
    bad.expect_code(1);
    assert!(bad.stderr.contains("jsonl, ocsf or cloudevents"), "{}", bad.stderr);
    if let Some(py) = python() {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in [("all", &all), ("rest", &rest), ("ocsf", &ocsf)] {
            let file = dir.path().join(name);
            std::fs::write(&file, text).unwrap();
            let (code, out) = verify(py, &file, &[]);
            assert_eq!(code, 0, "{name}: {out}");
        }
    }
}

/// Bench (run by hand: `cargo test -p rancher-access-tests --test audit_export -- --ignored --nocapture`): the
/// JSON-lines export of a 100,000-entry SQLite log by `rancherctl`, its peak RSS read from `/proc` while it runs.
/// The bound (64 MiB) is the issue's; the figure is printed.
#[test]
#[ignore = "bench: fills a 100,000-entry store (about a minute); run with --ignored"]
fn bench_the_jsonl_export_of_100k_entries_in_flat_memory() {
    use rancher_access_tests::cli::command;
    use rancher_access_tests::process::SpawnKilledOnDrop as _;
    use rancher_approval::{audit::DirectWrite, Store as _};
    const N: u64 = 100_000;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("big.db");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = rancher_approval::SqliteStore::open(&db).unwrap();
        for i in 0..N {
            let write = DirectWrite {
                operation: "tokens.delete".into(),
                method: "DELETE".into(),
                path: format!("/v3/tokens/token-{i:06}"),
                params: Default::default(),
                body: Some(json!({"note": "a typical body of a few dozen bytes, so lines are realistic"})),
                server: "https://rancher.example.com".into(),
                actor_username: Some("admin".into()),
            };
            store
                .record_direct_write("u-admin", write, chrono::Utc::now())
                .await
                .unwrap();
        }
    });
    let url = format!("sqlite:{}", db.display());
    let out = std::fs::File::create(dir.path().join("export.jsonl")).unwrap();
    let mut child = command(&["--store", &url, "approvals", "audit", "--export", "jsonl"], &[])
        .stdout(out)
        .stderr(std::process::Stdio::null())
        .spawn_killed_on_drop()
        .unwrap();
    let pid = child.id();
    let mut peak_kib = 0u64;
    let status = loop {
        if let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            if let Some(kib) = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            {
                peak_kib = peak_kib.max(kib);
            }
        }
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    assert!(status.success(), "the export failed");
    let text = std::fs::read_to_string(dir.path().join("export.jsonl")).unwrap();
    assert_eq!(text.lines().count() as u64, N);
    eprintln!(
        "bench: JSON-lines export of {N} entries, peak RSS {:.1} MiB",
        peak_kib as f64 / 1024.0
    );
    assert!(peak_kib <= 64 * 1024, "peak RSS {peak_kib} KiB is over 64 MiB");
}
