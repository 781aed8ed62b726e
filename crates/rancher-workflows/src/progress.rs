//! How far a long run got, for whoever watches it: a workflow names each stage (reading tokens, deleting tokens)
//! with its size when known, and counts items as they are done. The CLI draws it on a terminal; everyone else gets
//! [`Silent`]. Reports are best effort and never change what a workflow does.

use std::sync::Arc;

/// Where a run reports its progress. Calls are cheap and may come from several tasks at once.
pub trait Progress: Send + Sync {
    /// A new stage begins: what is done in it and, when known, how many items it has.
    fn stage(&self, what: &str, total: Option<u64>);
    /// `n` more items of the current stage are done.
    fn advance(&self, n: u64);
    /// The run ended (done or failed): nothing more is reported for it.
    fn finish(&self) {}
}

/// Reports nowhere: the default of every executor.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Progress for Silent {
    fn stage(&self, _what: &str, _total: Option<u64>) {}
    fn advance(&self, _n: u64) {}
}

/// The shared handle an executor carries.
pub type ProgressHandle = Arc<dyn Progress>;

/// A handle that reports nowhere.
pub fn silent() -> ProgressHandle {
    Arc::new(Silent)
}

/// Keeps every stage a run reports, with the items counted in it: for tests of workflows and of their callers.
#[derive(Debug, Default)]
pub struct Recorded(std::sync::Mutex<Vec<(String, Option<u64>, u64)>>);

impl Recorded {
    /// The stages so far: what, its total when known, and the items counted in it.
    pub fn stages(&self) -> Vec<(String, Option<u64>, u64)> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Forgets the stages so far.
    pub fn clear(&self) {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
    }
}

impl Progress for Recorded {
    fn stage(&self, what: &str, total: Option<u64>) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((what.to_string(), total, 0));
    }
    fn advance(&self, n: u64) {
        if let Some(last) = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .last_mut()
        {
            last.2 += n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Progress, Recorded};

    #[test]
    fn items_count_against_the_stage_they_belong_to() {
        let r = Recorded::default();
        r.advance(3); // before any stage: nowhere to count, and no panic
        r.stage("reading tokens", None);
        r.advance(2);
        r.advance(5);
        r.stage("deleting tokens", Some(4));
        r.advance(4);
        assert_eq!(
            r.stages(),
            vec![
                ("reading tokens".to_string(), None, 7),
                ("deleting tokens".to_string(), Some(4), 4)
            ]
        );
    }
}
