//! 1,000 mixed workflow runs (lists, generic reads, creates, deletes, approval round trips) through
//! `rancher_workflows::Runner` against rancher-sim injecting about 10% faults: 429 with `Retry-After`, 500, 503,
//! connections dropped before and after a write was applied, and expired `continue` tokens.
//!
//! Every read completes; the final bindings equal an expected model (none missing, none twice); and the request
//! log shows that a write whose answer was lost was checked for before anything was sent again. The runs are
//! sequential so each run's slice of the simulator's request log can be read on its own.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rancher_access_tests::faulty::{faulty_client, WriteFault};
use rancher_access_tests::{client_builder, SplitMix};
use rancher_approval::{MemoryStore, Policy};
use rancher_sim::{Faults, RancherVersion, RequestRecord, SimConfig, SimHandle, Simulator};
use rancher_workflows::{Approved, Runner, Session, Submitted};
use serde_json::json;

const RUNS: usize = 1_000;
/// Global roles the suite grants and takes away (the seeded `admin` and `user` bindings are left alone).
const ROLES: [&str; 2] = ["clusters-create", "user-base"];
const GRB_PATH: &str = "/apis/management.cattle.io/v3/globalrolebindings";

/// About 10% of requests fail: 3% each 429 / 500 / 503; of writes, 3% are dropped before and 3% after being
/// applied; 5% of continue requests find their token expired.
fn faults() -> Faults {
    Faults {
        rate_429: 0.03,
        retry_after_secs: 0,
        rate_500: 0.03,
        rate_503: 0.03,
        drop_before_write: 0.03,
        drop_after_write: 0.03,
        continue_expire_rate: 0.05,
        ..Faults::default()
    }
}

async fn session(sim: &SimHandle, token: &str) -> Session {
    // Small pages, so lists follow several continue tokens (and meet expired ones).
    let client = client_builder(sim, token).page_size(25).build().expect("client builds");
    Session::open(client).await.expect("a session opens through the faults")
}

#[derive(Debug, Default)]
struct Tally {
    runs: BTreeMap<&'static str, usize>,
    /// Write runs that ended in an error and were run again (an operator would).
    reruns: usize,
    /// Of those, runs whose error said nothing was applied while the binding had been created.
    misreported: usize,
    /// Creates answered with `reconciled: true` (the answer was lost, the check found the binding).
    reconciled: usize,
}

/// The runs' view of a binding: who holds which managed role.
fn bindings_on(sim: &SimHandle) -> BTreeMap<(String, String), usize> {
    let mut held = BTreeMap::new();
    for b in sim.objects("globalrolebindings") {
        let role = b["globalRoleName"].as_str().unwrap_or_default().to_string();
        let user = b["userName"].as_str().unwrap_or_default().to_string();
        if ROLES.contains(&role.as_str()) {
            *held.entry((user, role)).or_insert(0) += 1;
        }
    }
    held
}

/// One run's requests: every create POST after the first is preceded by a check (a GET of the bindings), and so
/// is anything sent after a create whose answer was lost.
fn assert_no_blind_resend(run: usize, what: &str, log: &[RequestRecord]) {
    let mut checked_since_post = true;
    for (i, r) in log.iter().enumerate() {
        let path = r.path.split('?').next().unwrap_or_default();
        if r.method == "GET" && path == GRB_PATH {
            checked_since_post = true;
        }
        if r.method == "POST" && path == GRB_PATH {
            assert!(
                checked_since_post,
                "run {run} ({what}): create #{i} was sent again without checking the server first:\n{log:#?}"
            );
            checked_since_post = false;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_mixed_runs_through_ten_percent_faults() {
    let sim = Simulator::start(
        SimConfig::default()
            .rancher_version(RancherVersion::V2_13)
            .users(40)
            .seed(11)
            .port(0),
    )
    .await
    .expect("simulator starts");
    sim.set_faults(faults());
    let admin = session(&sim, &sim.tokens().admin).await;
    let approver = session(&sim, &sim.tokens().approver).await;
    // Direct runs (no approval) and approval round trips, each with its own installations.
    let direct = Runner::new(Arc::new(MemoryStore::new()), "faults-direct");
    let approvals = Runner::new(Arc::new(MemoryStore::new()), "faults-approvals");
    let lists = [
        "list-users",
        "list-global-roles",
        "list-global-role-bindings",
        "list-projects",
        "list-role-templates",
    ];
    for wf in lists.iter().chain(&[
        "create-global-role-binding",
        "delete-global-role-binding",
        "rancher-api-request",
    ]) {
        direct
            .install(&admin, wf, Some(Policy::none()))
            .await
            .expect("installs through the faults");
    }
    approvals
        .install(&admin, "create-global-role-binding", None)
        .await
        .expect("installs (installer approval)");

    let users: Vec<String> = (1..=40)
        .map(|i| sim.user_id(&format!("user{i:05}")).expect("seeded user"))
        .collect();
    let expected_users = sim.count("users");
    let mut model: BTreeSet<(String, String)> = BTreeSet::new();
    let mut tally = Tally::default();
    let mut rng = SplitMix(0x5eed);
    sim.clear_request_log();

    let mut log: Vec<RequestRecord> = Vec::new();
    let started = std::time::Instant::now();
    for run in 0..RUNS {
        let pick = rng.below(100);
        let user = users[rng.below(users.len() as u64) as usize].clone();
        let role = ROLES[rng.below(ROLES.len() as u64) as usize].to_string();
        let what: &'static str = match pick {
            0..=44 => {
                let wf = lists[rng.below(lists.len() as u64) as usize];
                let out = match direct.submit(&admin, wf, json!({}), None, false).await {
                    Ok(Submitted::Succeeded { result }) => result,
                    other => panic!("run {run}: the read {wf} did not complete through the faults: {other:?}"),
                };
                let n = out.result.as_array().map(Vec::len).unwrap_or(0);
                if wf == "list-users" {
                    assert_eq!(
                        n, expected_users,
                        "run {run}: every user, once, across pages and restarts"
                    );
                }
                assert!(n > 0, "run {run}: {wf} came back empty");
                "list"
            }
            45..=49 => {
                let inputs = json!({"operation": "rk.globalroles.get", "params": {"name": role}});
                match direct.submit(&admin, "rancher-api-request", inputs, None, false).await {
                    Ok(Submitted::Succeeded { result }) => assert_eq!(result.result["metadata"]["name"], json!(role)),
                    other => panic!("run {run}: the generic read did not complete: {other:?}"),
                }
                "generic read"
            }
            50..=74 => {
                let inputs = json!({"user": user, "role": role});
                let mut attempt = 0;
                loop {
                    match direct
                        .submit(&admin, "create-global-role-binding", inputs.clone(), None, false)
                        .await
                    {
                        Ok(Submitted::Succeeded { result }) => {
                            let r = &result.result;
                            if r["reconciled"] == json!(true) {
                                tally.reconciled += 1;
                            }
                            if r["created"] == json!(false) && !model.contains(&(user.clone(), role.clone())) {
                                // Only an earlier attempt of this run can have made it: its error was wrong.
                                assert!(
                                    attempt > 0,
                                    "run {run}: `already holds` for a binding the model lacks: {}",
                                    result.summary
                                );
                                tally.misreported += 1;
                            }
                            break;
                        }
                        Ok(other) => panic!("run {run}: a direct create waited for approval: {other:?}"),
                        Err(e) => {
                            attempt += 1;
                            tally.reruns += 1;
                            assert!(attempt < 6, "run {run}: a create kept failing: {e}");
                        }
                    }
                }
                model.insert((user.clone(), role.clone()));
                "create"
            }
            75..=79 => {
                let inputs = json!({"user": user, "role": role});
                let mut attempt = 0;
                loop {
                    let request = match approvals
                        .submit(&admin, "create-global-role-binding", inputs.clone(), None, false)
                        .await
                    {
                        Ok(Submitted::Pending { request, .. }) => request,
                        // A binding held already is refused before anyone is asked (issue 27 #16): only when it is
                        // held, by the model or by an earlier attempt of this run.
                        Err(rancher_workflows::Error::AlreadyHeld(said)) => {
                            assert!(
                                model.contains(&(user.clone(), role.clone())) || attempt > 0,
                                "run {run}: refused as held, but the model lacks it: {said}"
                            );
                            break;
                        }
                        other => panic!("run {run}: the request was not filed through the faults: {other:?}"),
                    };
                    match approvals
                        .approve(&approver, &request, Some("faults suite".into()))
                        .await
                    {
                        Ok(Approved::Succeeded { result, .. }) => {
                            if result.result["reconciled"] == json!(true) {
                                tally.reconciled += 1;
                            }
                            if result.result["created"] == json!(false)
                                && !model.contains(&(user.clone(), role.clone()))
                            {
                                assert!(
                                    attempt > 0,
                                    "run {run}: `already holds` for a binding the model lacks: {}",
                                    result.summary
                                );
                                tally.misreported += 1;
                            }
                            break;
                        }
                        Ok(Approved::Failed { .. }) | Err(_) => {
                            attempt += 1;
                            tally.reruns += 1;
                            assert!(attempt < 6, "run {run}: an approved create kept failing");
                        }
                        Ok(Approved::Pending { .. }) => {
                            panic!("run {run}: one approval is enough under installer approval")
                        }
                    }
                }
                model.insert((user.clone(), role.clone()));
                "approval"
            }
            _ => {
                let inputs = json!({"user": user, "role": role});
                let mut attempt = 0;
                while let Err(e) = direct
                    .submit(&admin, "delete-global-role-binding", inputs.clone(), None, false)
                    .await
                {
                    attempt += 1;
                    tally.reruns += 1;
                    assert!(attempt < 6, "run {run}: a delete kept failing: {e}");
                }
                model.remove(&(user.clone(), role.clone()));
                "delete"
            }
        };
        *tally.runs.entry(what).or_insert(0) += 1;
        // This run's requests (the runs are sequential), kept for the totals.
        let mine = sim.request_log();
        sim.clear_request_log();
        assert_no_blind_resend(run, what, &mine);
        log.extend(mine);
    }

    let took = started.elapsed();
    // The state: exactly the model, nothing twice.
    sim.set_faults(Faults::none());
    let held = bindings_on(&sim);
    let twice: Vec<_> = held.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "duplicated bindings: {twice:?}");
    let on_server: BTreeSet<(String, String)> = held.into_keys().collect();
    let missing: Vec<_> = model.difference(&on_server).collect();
    let extra: Vec<_> = on_server.difference(&model).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}; unexpected {extra:?}"
    );

    // The log agrees with the write counters: every applied create is one the client knows about.
    let mut faults_seen: BTreeMap<String, usize> = BTreeMap::new();
    for r in &log {
        if let Some(f) = &r.fault {
            *faults_seen.entry(f.clone()).or_insert(0) += 1;
        }
    }
    let expired = log.iter().filter(|r| r.status == 410).count();
    let creates_applied = log
        .iter()
        .filter(|r| r.method == "POST" && r.path.split('?').next() == Some(GRB_PATH))
        .filter(|r| r.status == 201 || r.fault.as_deref() == Some("drop-after"))
        .count() as u64;
    assert_eq!(sim.writes("globalrolebindings", "create"), creates_applied);
    let lost_creates = log
        .iter()
        .filter(|r| r.method == "POST" && r.fault.as_deref() == Some("drop-after"))
        .count();
    let faulty = faults_seen.values().sum::<usize>() + expired;
    eprintln!(
        "faults suite: {RUNS} runs {:?}; {} requests, {faulty} faulted ({:.1}%): {faults_seen:?}, {expired} expired continue tokens; \
         {creates_applied} creates applied, {lost_creates} create answers lost, {} reconciled by checking; {} runs re-run after an error, \
         {} of them misreported as not applied; final bindings: {}; {:.1} s",
        tally.runs,
        log.len(),
        100.0 * faulty as f64 / log.len() as f64,
        tally.reconciled,
        tally.reruns,
        tally.misreported,
        model.len(),
        took.as_secs_f64()
    );
    assert!(faulty * 100 >= log.len() * 5, "the suite ran with real faults");
    assert!(
        lost_creates > 0 && tally.reconciled > 0,
        "some create answers were lost and reconciled"
    );
}

async fn create_through(
    sim: &SimHandle,
    script: &[WriteFault],
) -> (
    Result<Submitted, rancher_workflows::Error>,
    Vec<(String, String, WriteFault)>,
    String,
) {
    let (client, transport) = faulty_client(sim, &sim.tokens().admin, script);
    let admin = Session::open(client).await.expect("session");
    let runner = Runner::new(Arc::new(MemoryStore::new()), "lost-answers");
    runner
        .install(&admin, "create-global-role-binding", Some(Policy::none()))
        .await
        .expect("installs");
    let bob = sim.users().standard[1].id.clone();
    let out = runner
        .submit(
            &admin,
            "create-global-role-binding",
            json!({"user": bob, "role": "clusters-create"}),
            None,
            false,
        )
        .await;
    let writes = transport.seen().into_iter().filter(|(m, _, _)| m != "GET").collect();
    (out, writes, bob)
}

#[tokio::test]
async fn a_create_whose_answer_was_lost_is_confirmed_by_checking_not_sent_again() {
    let sim = Simulator::start(SimConfig::default().seed(3))
        .await
        .expect("simulator starts");
    let (out, writes, bob) = create_through(&sim, &[WriteFault::LoseAnswer]).await;
    let Ok(Submitted::Succeeded { result }) = out else {
        panic!("{out:?}")
    };
    assert_eq!(result.result["reconciled"], json!(true), "{}", result.summary);
    assert!(
        result.summary.contains("confirmed after a lost answer"),
        "{}",
        result.summary
    );
    assert_eq!(writes.len(), 1, "one POST, never resent: {writes:?}");
    assert_eq!(sim.writes("globalrolebindings", "create"), 1);
    assert!(sim.has_binding(&bob, "clusters-create"));

    // Refused before it was applied: checked, then sent once more.
    let sim = Simulator::start(SimConfig::default().seed(4))
        .await
        .expect("simulator starts");
    let (out, writes, bob) = create_through(&sim, &[WriteFault::Refuse503]).await;
    assert!(matches!(out, Ok(Submitted::Succeeded { .. })), "{out:?}");
    assert_eq!(
        writes.iter().map(|w| w.2).collect::<Vec<_>>(),
        [WriteFault::Refuse503, WriteFault::Pass]
    );
    assert_eq!(sim.writes("globalrolebindings", "create"), 1);
    assert!(sim.has_binding(&bob, "clusters-create"));
}

/// `Exec::create_binding`: when the second attempt's answer is lost too, the server is checked again (that attempt
/// may have been applied), so a binding that exists is never reported as failed. (Found by this suite.)
#[tokio::test]
async fn a_second_lost_answer_is_not_reported_as_not_applied() {
    let sim = Simulator::start(SimConfig::default().seed(5))
        .await
        .expect("simulator starts");
    let (out, writes, bob) = create_through(&sim, &[WriteFault::Refuse503, WriteFault::LoseAnswer]).await;
    assert_eq!(writes.len(), 2, "{writes:?}");
    assert!(
        sim.has_binding(&bob, "clusters-create"),
        "the second attempt was applied"
    );
    match out {
        Ok(Submitted::Succeeded { result }) => assert_eq!(result.result["created"], json!(true), "{}", result.summary),
        other => panic!("the binding exists, but the run said: {other:?}"),
    }
}
