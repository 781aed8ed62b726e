//! The answer of `GET /api/v1/policies` (its handler is in [`crate::api`]): the approval rules installed in the service's store (see
//! `rancher_approval::rules::installed`), which `rancherctl policies plan` compares files with and `policies
//! export` writes back. Installing goes through the `apply-policies` workflow, filed with `POST /api/v1/run`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `GET /api/v1/policies`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct InstalledPoliciesAnswer {
    /// What is installed; absent when no rules were ever applied (every request follows its workflow's policy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installed: Option<InstalledPoliciesView>,
}

/// The installed rule set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct InstalledPoliciesView {
    /// The rule set's hash.
    pub hash: String,
    /// The policy files by name, with their text.
    pub files: BTreeMap<String, String>,
    /// When they were installed.
    #[schema(value_type = String, format = DateTime)]
    pub installed_at: DateTime<Utc>,
    /// Who asked for them (a Rancher user id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// The approval request they were installed under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
}

impl From<rancher_approval::rules::installed::InstalledPolicies> for InstalledPoliciesView {
    fn from(p: rancher_approval::rules::installed::InstalledPolicies) -> Self {
        Self {
            hash: p.hash,
            files: p.files,
            installed_at: p.installed_at,
            by: p.by,
            request: p.request,
        }
    }
}
