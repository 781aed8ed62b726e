//! Children of the tests that never outlive them: a `rancherctl`, simulator or test-binary child is killed and
//! reaped when its handle is dropped, on success and on a panic (unwinding drops it) alike. The guard lives in
//! rancher-approval's `test_util`, whose own process suites use it too.

pub use rancher_approval::test_util::process::{KillOnDrop, SpawnKilledOnDrop};
