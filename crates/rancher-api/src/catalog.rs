//! The endpoint list as a whole: looking an operation up by id, and what needs the generated types behind an
//! operation (masking secrets in its answer). It sits above both [`crate::spec`], which only describes one
//! operation, and the generated code that fills the list in; [`crate::spec`] re-exports the look-ups.

use crate::generated::operations::{redact_secrets, OPERATIONS};
use crate::spec::{closest, OperationSpec, ResponseKind};

impl OperationSpec {
    /// Masks the secret fields of this operation's answer (a fresh token's secret, a kubeconfig, a 1.x jwt) with
    /// [`crate::REDACTED`], following the types of the endpoint list, so the answer can be stored or logged.
    pub fn redact_answer(&self, answer: &mut serde_json::Value) {
        let ResponseKind::Json(name) = self.response else {
            return;
        };
        match name.strip_prefix("collection<").and_then(|n| n.strip_suffix('>')) {
            Some(item) => {
                if let Some(items) = answer.get_mut("data").and_then(serde_json::Value::as_array_mut) {
                    items.iter_mut().for_each(|i| redact_secrets(item, i));
                }
            }
            None => redact_secrets(name, answer),
        }
    }
}

/// Looks an operation up by id.
pub fn find_operation(id: &str) -> Option<&'static OperationSpec> {
    OPERATIONS.iter().find(|o| o.id == id)
}

/// All operations of the endpoint list.
pub fn operations() -> &'static [OperationSpec] {
    OPERATIONS
}

/// The known id closest to `id` (for "did you mean" hints).
pub fn suggest_operation(id: &str) -> Option<&'static str> {
    closest(id, operations().iter().map(|o| o.id))
}
