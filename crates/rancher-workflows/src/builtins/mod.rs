//! The catalog's own workflows that are neither lists ([`crate::listing`]) nor access control
//! ([`crate::access`]): the global role binding workflows and the generic API request, each a
//! [`crate::TypedWorkflow`] with its input struct.

mod api;
mod global;

pub use api::{ApiInputs, ApiRequest};
pub use global::{CreateGlobalRoleBinding, CreateInputs, DeleteGlobalRoleBinding, DeleteInputs};
