//! Children of this crate's process suites never outlive the test: the guard of `test_util::process`, killed and
//! reaped on drop, on success and on a panic alike.

pub use rancher_approval::test_util::process::SpawnKilledOnDrop;
