//! Replays the committed fuzz corpus of the policy rule loader on stable, through the same entry function the fuzz
//! target calls, so a regression the fuzzer once covered fails CI.

#[path = "../../../fuzz/src/approval.rs"]
mod entries;

#[path = "../../../fuzz/src/replay.rs"]
mod corpus;

#[test]
fn rules_corpus() {
    corpus::replay(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz"),
        "rules",
        entries::rules,
    );
}
