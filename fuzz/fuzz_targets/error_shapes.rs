//! Fuzz target `error_shapes`: see [`rancher_access_fuzz::api::error_shapes`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rancher_access_fuzz::api::error_shapes(data));
