//! A writer process killed (SIGKILL) at an arbitrary point loses nothing it had acknowledged, and the store and its
//! audit chain stay consistent.
//!
//! The writer is this test binary re-run as a child with `--ignored --exact crash_child_writer`; it prints an `ack`
//! line only after each store call has returned, i.e. after the commit. The parent kills it while it is busy.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

mod support;
use support::SpawnKilledOnDrop;

use chrono::Utc;
use rancher_approval::{
    ApproverRef, Decision, EligibilityContext, NewRequest, Outcome, Policy, Principal, RequestId, RequestState,
    SqliteStore, Store,
};

const CHILD_ENV: &str = "RANCHER_APPROVAL_CRASH_CHILD_DB";

fn policy() -> Policy {
    Policy::at_least(2, ["u-1", "u-2", "u-3"].map(ApproverRef::user))
}

/// The writer. Not a test of its own: it only runs when the crash test starts it.
#[ignore = "helper process started by killing_a_writer_loses_nothing_acknowledged"]
#[tokio::test]
async fn crash_child_writer() {
    let path = std::env::var(CHILD_ENV).expect("run by killing_a_writer_loses_nothing_acknowledged");
    let store = SqliteStore::open(&path).unwrap();
    let ctx = EligibilityContext::default();
    loop {
        let req = store
            .create_request(NewRequest::new("wf", Principal::new("u-req"), policy()), Utc::now())
            .await
            .unwrap();
        println!("ack created {}", req.id);
        for approver in ["u-1", "u-2"] {
            store
                .decide(
                    &req.id,
                    &Principal::new(approver),
                    Decision::approve(),
                    &ctx,
                    Utc::now(),
                )
                .await
                .unwrap();
            println!("ack decided {} {approver}", req.id);
        }
        let claim = store
            .claim_execution(
                &req.id,
                &rancher_approval::Executor::new("u-child", "child"),
                Utc::now() + chrono::TimeDelta::minutes(5),
                Utc::now(),
            )
            .await
            .unwrap();
        println!("ack claimed {} {}", req.id, claim.claim_id);
        store
            .record_outcome(&claim, Outcome::succeeded(serde_json::json!({"n": 1})), Utc::now())
            .await
            .unwrap();
        println!("ack finished {}", req.id);
    }
}

/// Starts a writer on `path`, lets it acknowledge `acks` operations, kills it, and returns what it acknowledged.
fn run_and_kill(path: &Path, acks: usize) -> Vec<Vec<String>> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash_child_writer",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn_killed_on_drop()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acked = Vec::new();
    while acked.len() < acks {
        let line = lines.next().expect("the writer stopped early").unwrap();
        if let Some(ack) = line.strip_prefix("ack ") {
            acked.push(ack.split(' ').map(str::to_owned).collect());
        }
    }
    child.kill().unwrap(); // SIGKILL: no destructors, no rollback, mid-transaction or not.
    child.wait().unwrap();
    acked
}

#[tokio::test]
async fn killing_a_writer_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("approvals.db");
    drop(SqliteStore::open(&path).unwrap());
    let mut all_acked = Vec::new();
    for round in 0..3 {
        all_acked.extend(run_and_kill(&path, 60 + round * 7));
        let store = SqliteStore::open(&path).unwrap();
        let entries = store.verify_audit().await.unwrap();
        assert!(entries as usize >= all_acked.len(), "round {round}");
        for ack in &all_acked {
            let id: RequestId = ack[1].parse().unwrap();
            let req = store
                .get_request(&id)
                .await
                .unwrap_or_else(|e| panic!("acknowledged request lost: {e}"));
            match ack[0].as_str() {
                "created" => {}
                "decided" => assert!(
                    req.decisions.iter().any(|d| d.principal.id == ack[2]),
                    "acknowledged decision by {} on {id} lost",
                    ack[2]
                ),
                "claimed" => assert_eq!(
                    req.execution.as_ref().map(|e| e.claim_id.as_str()),
                    Some(ack[2].as_str())
                ),
                "finished" => assert_eq!(req.state, RequestState::Succeeded),
                other => panic!("unknown ack {other}"),
            }
        }
        // Whatever was cut off mid-way left a consistent request behind: its state agrees with its decisions.
        for req in store.list_requests(&Default::default()).await.unwrap() {
            match req.state {
                RequestState::Pending => assert!(req.decisions.len() < 2),
                RequestState::Approved => assert!(req.execution.is_none()),
                RequestState::Executing | RequestState::Succeeded => {
                    assert!(req.execution.is_some())
                }
                other => panic!("unexpected state {other}"),
            }
        }
    }
}

/// A test that panics while its writer runs (the writer never stops by itself) leaves no process behind: the
/// guard kills and reaps the child as the panic unwinds.
#[cfg(target_os = "linux")]
#[test]
fn a_panicking_test_leaves_no_writer_behind() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("approvals.db");
    let (tx, rx) = std::sync::mpsc::channel();
    let failed = std::thread::spawn(move || {
        let child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "crash_child_writer", "--ignored", "--test-threads=1"])
            .env(CHILD_ENV, &path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn_killed_on_drop()
            .unwrap();
        tx.send(child.id()).unwrap();
        panic!("a test failing while its writer runs");
    })
    .join();
    assert!(failed.is_err(), "the thread was meant to panic");
    let pid = rx.recv().unwrap();
    // Reaped, so not even a zombie entry is left.
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "writer {pid} outlived the panicking test"
    );
}
