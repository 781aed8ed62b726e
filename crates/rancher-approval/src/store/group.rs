//! Group commit, shared by the SQL stores: writes that arrive while another transaction commits are queued and then
//! run together in one transaction, each under its own savepoint, and each caller is answered only once that
//! transaction committed (or with the error that kept it from committing). Every write appends to the audit chain,
//! so writes serialize on its head anyway; one commit (one fsync) per batch instead of one per write is what lets
//! concurrent deciders go faster than the disk's flush latency allows one at a time.

use super::{Tx, TxBody};
use crate::error::{Error, Result};

/// A queued write, with its type erased: it runs in a batch's transaction, then learns whether that committed.
pub(crate) trait Job: Send {
    /// Runs the body; answers whether it succeeded (its savepoint is kept) and how to deliver its result once
    /// the batch's fate is known (`Some(error)`: the batch did not commit).
    fn run<'t>(self: Box<Self>, tx: &'t mut dyn Tx) -> futures::future::BoxFuture<'t, (bool, Deliver)>;
    /// Fails the write without running it.
    fn fail(self: Box<Self>, error: Error);
}

pub(crate) type Deliver = Box<dyn FnOnce(Option<Error>) + Send>;

pub(crate) struct Queued<T> {
    pub(crate) body: TxBody<T>,
    pub(crate) reply: tokio::sync::oneshot::Sender<Result<T>>,
}

impl<T: Send + 'static> Job for Queued<T> {
    fn run<'t>(self: Box<Self>, tx: &'t mut dyn Tx) -> futures::future::BoxFuture<'t, (bool, Deliver)> {
        let Queued { body, reply } = *self;
        Box::pin(async move {
            let result = body(tx).await;
            let ok = result.is_ok();
            let deliver: Deliver = Box::new(move |failed| {
                let _ = reply.send(match failed {
                    Some(e) if ok => Err(e),
                    _ => result,
                });
            });
            (ok, deliver)
        })
    }

    fn fail(self: Box<Self>, error: Error) {
        let _ = self.reply.send(Err(error));
    }
}
