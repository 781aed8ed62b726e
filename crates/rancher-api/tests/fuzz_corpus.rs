//! Replays the committed fuzz corpora of rancher-api's wire parsers on stable (the three error shapes, the list
//! envelopes), through the same entry functions the fuzz targets call, so a regression the fuzzer once covered
//! fails CI.

#[path = "../../../fuzz/src/api.rs"]
mod entries;

#[path = "../../../fuzz/src/replay.rs"]
mod corpus;

fn replay(target: &str, entry: fn(&[u8])) {
    corpus::replay(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz"),
        target,
        entry,
    );
}

#[test]
fn error_shapes_corpus() {
    replay("error_shapes", entries::error_shapes);
}

#[test]
fn list_envelopes_corpus() {
    replay("list_envelopes", entries::list_envelopes);
}

#[test]
fn request_target_corpus() {
    replay("request_target", entries::request_target);
}
