//! Fuzz target `profile`: see [`rancher_access_fuzz::auth::profile`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rancher_access_fuzz::auth::profile(data));
