//! The entry functions of the fuzz targets, one per parser. Each takes arbitrary bytes, must never panic, and
//! checks the invariants its parser promises (a parsed value survives a round trip, errors stay one bounded line,
//! secrets stay out of Debug output).
//!
//! The same files are compiled into stable tests of the owning crates (`crates/rancher-api/tests/fuzz_corpus.rs`,
//! `crates/rancher-auth/tests/fuzz_corpus.rs`, `crates/rancher-approval/tests/fuzz_corpus.rs`), which replay
//! `fuzz/corpus/<target>/*`, so CI catches a regression without nightly.

pub mod api;
pub mod approval;
pub mod auth;
