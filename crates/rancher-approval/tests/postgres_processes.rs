//! Two processes (as two service replicas would be) claim the same approved requests on one PostgreSQL database:
//! every request is claimed by exactly one of them, and the audit chain stays one verifiable chain.
//!
//! The claimer is this test binary re-run as a child with `--ignored --exact race_child_claimer`.

use std::process::{Command, Stdio};

mod support;
use support::SpawnKilledOnDrop;

use chrono::{TimeDelta, Utc};
use rancher_approval::test_util::TestDatabase;
use rancher_approval::{
    ApproverRef, Decision, EligibilityContext, Error, Executor, NewRequest, Policy, PostgresStore, Principal,
    RequestFilter, RequestState, Store,
};

const CHILD_ENV: &str = "RANCHER_APPROVAL_RACE_CHILD_DB";

/// The claimer. Not a test of its own: it only runs when the race test starts it.
#[ignore = "helper process started by two_processes_claim_each_request_once"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn race_child_claimer() {
    let url = std::env::var(CHILD_ENV).expect("run by two_processes_claim_each_request_once");
    let store = PostgresStore::connect(&url).await.unwrap();
    let approved = store
        .list_requests(&RequestFilter::all().state(RequestState::Approved))
        .await
        .unwrap();
    let me = Executor::new("u-exec", format!("pid {}", std::process::id()));
    // Several tasks per process, all on the same requests.
    let wins = futures::future::join_all((0..4).map(|_| async {
        let mut won = Vec::new();
        for r in &approved {
            match store
                .claim_execution(&r.id, &me, Utc::now() + TimeDelta::minutes(5), Utc::now())
                .await
            {
                Ok(claim) => won.push(claim.request_id),
                Err(Error::AlreadyClaimed { .. }) => {}
                Err(e) => panic!("unexpected claim error: {e}"),
            }
        }
        won
    }))
    .await;
    for id in wins.into_iter().flatten() {
        println!("won {id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_claim_each_request_once() {
    let Some(db) = TestDatabase::create("two_processes").await else {
        return;
    };
    let store = db.store_with(Default::default()).await;
    let policy = Policy::at_least(2, ["u-1", "u-2"].map(ApproverRef::user));
    let mut ids = Vec::new();
    for _ in 0..40 {
        let req = store
            .create_request(
                NewRequest::new("wf", Principal::new("u-req"), policy.clone()),
                Utc::now(),
            )
            .await
            .unwrap();
        for who in ["u-1", "u-2"] {
            store
                .decide(
                    &req.id,
                    &Principal::new(who),
                    Decision::approve(),
                    &EligibilityContext::default(),
                    Utc::now(),
                )
                .await
                .unwrap();
        }
        ids.push(req.id.to_string());
    }
    let children: Vec<_> = (0..2)
        .map(|_| {
            Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "race_child_claimer",
                    "--ignored",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CHILD_ENV, db.url())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn_killed_on_drop()
                .unwrap()
        })
        .collect();
    let mut won: Vec<String> = Vec::new();
    let mut per_child = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "claimer failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mine: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            // With --nocapture the harness's "test race_child_claimer ... " may precede the first line.
            .filter_map(|l| l.split_once("won ").map(|(_, id)| id.trim().to_owned()))
            .collect();
        per_child.push(mine.len());
        won.extend(mine);
    }
    won.sort();
    ids.sort();
    assert_eq!(
        won, ids,
        "every request claimed exactly once across both processes ({per_child:?})"
    );
    for id in &ids {
        let r = store.get_request(&id.parse().unwrap()).await.unwrap();
        assert_eq!(r.state, RequestState::Executing);
    }
    assert_eq!(store.verify_audit().await.unwrap(), 40 * 3 + 40);
}
