//! `token-report` and `cleanup-tokens` over several pages of tokens (the workflows read 2,000 a page): the documents
//! they produce are pinned by snapshots, so a change in how the tokens are read, counted or written shows up as a
//! difference here. The simulator's tokens are deterministic for a seed (their times are relative to now, and every
//! figure below is a count or a name).

use rancher_access_tests::{runner, session};
use rancher_sim::{RancherVersion, SimConfig, Simulator};
use rancher_workflows::Submitted;
use serde_json::json;

#[tokio::test]
async fn a_report_and_a_dry_run_over_several_pages_are_the_documents_pinned() {
    let sim = Simulator::start(
        SimConfig::default()
            .rancher_version(RancherVersion::V2_13)
            .users(40)
            .tokens(6_500)
            .seed(34)
            .port(0),
    )
    .await
    .expect("simulator starts");
    let admin = session(&sim, &sim.tokens().admin).await;
    let r = runner();
    for w in ["token-report", "cleanup-tokens"] {
        r.install(&admin, w, None).await.unwrap();
    }
    let held = sim.count("tokens") + sim.count("exttokens");
    assert!(held > 3 * 2_000, "more than three pages: {held}");

    for inputs in [json!({}), json!({"unused-days": "30", "top": "7"})] {
        let out = match r
            .submit(&admin, "token-report", inputs.clone(), None, false)
            .await
            .unwrap()
        {
            Submitted::Succeeded { result } => result,
            other => panic!("token-report needs no approval: {other:?}"),
        };
        assert_eq!(out.result["totals"]["tokens"], json!(held));
        let name = format!("token_report_{}", if inputs == json!({}) { "all" } else { "top7" });
        insta::assert_json_snapshot!(
            name,
            json!({"summary": out.summary, "result": out.result, "table": out.table})
        );
    }

    let dry = json!({"filter": "expired", "kind": "kubeconfig"});
    let out = match r.submit(&admin, "cleanup-tokens", dry, None, true).await.unwrap() {
        Submitted::Succeeded { result } => result,
        other => panic!("a dry run runs at once: {other:?}"),
    };
    // Expiry and last use are times relative to when the simulator seeded them: shown as `<time>` when set.
    let mut table = serde_json::to_value(&out.table).unwrap();
    for row in table["rows"].as_array_mut().unwrap() {
        for cell in &mut row.as_array_mut().unwrap()[4..] {
            if cell.as_str().is_some_and(|c| !c.is_empty()) {
                *cell = json!("<time>");
            }
        }
    }
    insta::assert_json_snapshot!(
        "cleanup_tokens_dry_run",
        json!({"summary": out.summary, "result": out.result, "table": table})
    );
    sim.shutdown().await;
}
