//! Children of tests that never outlive them: a child (a `rancherctl`, a simulator, a test binary, a PostgreSQL
//! server tool) is killed and reaped when its handle is dropped, on success and on a panic (unwinding drops it)
//! alike. Shared by this crate's process suites and the end-to-end harness.

use std::io;
use std::ops::{Deref, DerefMut};
use std::process::{Child, Command, Output};

/// A child process killed (SIGKILL) and reaped on drop unless it has already exited. Derefs to [`Child`].
#[derive(Debug)]
pub struct KillOnDrop(Option<Child>);

impl KillOnDrop {
    /// Takes charge of `child`.
    pub fn new(child: Child) -> KillOnDrop {
        KillOnDrop(Some(child))
    }

    /// Waits for the child to exit and collects its remaining output (as [`Child::wait_with_output`]).
    pub fn wait_with_output(mut self) -> io::Result<Output> {
        self.0.take().expect("the child is held until drop").wait_with_output()
    }
}

impl Deref for KillOnDrop {
    type Target = Child;

    fn deref(&self) -> &Child {
        self.0.as_ref().expect("the child is held until drop")
    }
}

impl DerefMut for KillOnDrop {
    fn deref_mut(&mut self) -> &mut Child {
        self.0.as_mut().expect("the child is held until drop")
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            if !matches!(child.try_wait(), Ok(Some(_))) {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }
}

/// [`Command::spawn`] whose child is killed on drop. Every child a test starts goes through this.
pub trait SpawnKilledOnDrop {
    /// Spawns the command; the child is killed and reaped when the answer is dropped.
    fn spawn_killed_on_drop(&mut self) -> io::Result<KillOnDrop>;
}

impl SpawnKilledOnDrop for Command {
    fn spawn_killed_on_drop(&mut self) -> io::Result<KillOnDrop> {
        self.spawn().map(KillOnDrop::new)
    }
}
