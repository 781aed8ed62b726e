//! Fuzz target `domain`: see [`rancher_access_fuzz::auth::domain`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rancher_access_fuzz::auth::domain(data));
