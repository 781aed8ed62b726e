//! A workflow's installation, which requests are filed against and stores keep. It sits below both requests and
//! the stores; re-exported from [`crate::store`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::policy::Policy;
use crate::principal::Principal;

/// A workflow's installation: who installed it and the approval policy it runs under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Installation {
    /// The workflow id (e.g. `create-global-role-binding`).
    pub workflow_id: String,
    /// Who installed it; the `installer` policy asks this principal.
    pub installer: Principal,
    /// The policy new requests get.
    pub policy: Policy,
    /// When it was installed.
    pub installed_at: DateTime<Utc>,
    /// When it was last changed.
    pub updated_at: DateTime<Utc>,
}
