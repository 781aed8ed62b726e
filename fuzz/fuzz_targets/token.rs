//! Fuzz target `token`: see [`rancher_access_fuzz::auth::token`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rancher_access_fuzz::auth::token(data));
