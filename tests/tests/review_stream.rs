//! `rancherctl run access-review -o json` writes the review as it is produced (users past an index of the
//! bindings, one page at a time): what it prints is byte for byte the finished document the library's run gives
//! for the same server, and a review refused before it starts prints nothing on stdout.

use rancher_access_tests::cli::{command, Run, SimCli};
use rancher_access_tests::{runner, session};
use rancher_sim::RancherVersion;
use rancher_workflows::Submitted;
use serde_json::json;

#[test]
fn the_streamed_review_is_the_documents_bytes_and_a_refusal_prints_nothing() {
    let env = SimCli::start(RancherVersion::V2_13, 30);
    let admin_token = env.sim.tokens().admin.clone();
    let connected = env.connected_env(Some(&admin_token));
    let run = |args: &[&str]| Run::from_output(command(args, &connected).output().expect("runs"));
    run(&["workflows", "install", "access-review"]).expect_code(0);

    let doc = env.rt.block_on(async {
        let admin = session(&env.sim, &admin_token).await;
        let r = runner();
        r.install(&admin, "access-review", None).await.unwrap();
        match r.submit(&admin, "access-review", json!({}), None, false).await.unwrap() {
            Submitted::Succeeded { result } => result.result,
            other => panic!("a review runs at once: {other:?}"),
        }
    });
    assert!(doc["users"].as_array().unwrap().len() > 30, "{doc}");
    let printed = run(&["run", "access-review", "-o", "json"]);
    printed.expect_code(0);
    assert_eq!(
        printed.stdout,
        format!("{}\n", serde_json::to_string_pretty(&doc).unwrap())
    );

    let one = run(&["run", "access-review", "--input", "user=admin", "-o", "json"]);
    one.expect_code(0);
    let one: serde_json::Value = serde_json::from_str(&one.stdout).expect("one JSON document");
    assert_eq!(one["users"].as_array().unwrap().len(), 1, "{one}");

    let refused = run(&["run", "access-review", "--input", "user=nobody-at-all", "-o", "json"]);
    assert_ne!(refused.code, 0);
    assert_eq!(refused.stdout, "", "nothing printed before the refusal");
    assert!(refused.stderr.contains("nobody-at-all"), "{}", refused.stderr);
}
