//! Fuzz target `rules`: see [`rancher_access_fuzz::approval::rules`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rancher_access_fuzz::approval::rules(data));
