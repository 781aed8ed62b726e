//! Fuzz target `list_envelopes`: see [`rancher_access_fuzz::api::list_envelopes`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rancher_access_fuzz::api::list_envelopes(data));
