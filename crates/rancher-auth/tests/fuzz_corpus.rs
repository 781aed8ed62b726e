//! Replays the committed fuzz corpora of rancher-auth's parsers on stable (domain, token, profile loader), through
//! the same entry functions the fuzz targets call, so a regression the fuzzer once covered fails CI.

#[path = "../../../fuzz/src/auth.rs"]
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
fn domain_corpus() {
    replay("domain", entries::domain);
}

#[test]
fn token_corpus() {
    replay("token", entries::token);
}

#[test]
fn profile_corpus() {
    replay("profile", entries::profile);
}
