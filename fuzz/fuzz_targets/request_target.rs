//! Fuzz target `request_target`: see [`rancher_access_fuzz::api::request_target`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rancher_access_fuzz::api::request_target(data));
