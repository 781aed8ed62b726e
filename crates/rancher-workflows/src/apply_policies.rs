//! `apply-policies`: installs a set of policy files (approval rules in CEL, see `rancher_approval::rules`) in the
//! approvals store, through an approval request of its own. `rancherctl policies apply -f DIR` files it.
//!
//! The request holds the files themselves, so approvers review exactly what is installed, and the hash that
//! `rancherctl policies plan` showed; the files must still hash to it. Whoever approves it must be a Rancher
//! admin, whatever policy the workflow was given: changing who approves requests is itself approved by admins.
//! Applying the set that is installed already changes nothing and says so. The outcome (recorded in the audit log
//! with the execution) carries the old and the new hash.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::Utc;
use rancher_approval::rules::{files, installed, RuleSet};
use rancher_approval::{RequestId, Vote};
use serde::Deserialize;
use serde_json::json;

use crate::catalog::{DefaultApproval, InputKind, InputSpec, WorkflowDef};
use crate::error::{Error, Result};
use crate::exec::Exec;
use crate::workflow::{Inputs, Report, TypedWorkflow};

/// The id of the workflow.
pub const APPLY_POLICIES: &str = "apply-policies";

/// `apply-policies`.
pub static APPLY_POLICIES_DEF: WorkflowDef = WorkflowDef {
    id: APPLY_POLICIES,
    title: "Apply approval rules",
    description: "install policy files (approval rules in CEL) in the approvals store, once an admin approves; \
                  filed by `rancherctl policies apply -f DIR`",
    inputs: &[
        InputSpec {
            name: "files",
            kind: InputKind::Json,
            required: true,
            description: "the policy files by name, with their text",
        },
        InputSpec {
            name: "hash",
            kind: InputKind::String,
            required: true,
            description: "the rule set's hash, as `rancherctl policies plan` shows it",
        },
    ],
    output: "the old and the new rule set hash, and whether anything changed",
    default_approval: DefaultApproval::Installer,
    writes: true,
};

/// The inputs of `apply-policies`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplyInputs {
    /// The policy files by name.
    pub files: BTreeMap<String, String>,
    /// The hash they must have.
    pub hash: String,
}

/// `apply-policies`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApplyPolicies;

fn loaded(inputs: &ApplyInputs) -> Result<RuleSet> {
    let spec = files::spec_of_files(&inputs.files)
        .map_err(|e| Error::Refused(format!("{APPLY_POLICIES}: the policy files are not valid: {e}")))?;
    let set = RuleSet::load(spec)
        .map_err(|e| Error::Refused(format!("{APPLY_POLICIES}: the policy files are not valid: {e}")))?;
    if set.hash() != inputs.hash {
        return Err(Error::Refused(format!(
            "{APPLY_POLICIES}: the files hash to {}, not the {} given; run `rancherctl policies plan -f DIR` again",
            set.hash(),
            inputs.hash
        )));
    }
    Ok(set)
}

#[async_trait]
impl TypedWorkflow for ApplyPolicies {
    type Inputs = ApplyInputs;

    fn def(&self) -> &'static WorkflowDef {
        &APPLY_POLICIES_DEF
    }

    fn check(&self, inputs: &ApplyInputs) -> Result<()> {
        loaded(inputs).map(|_| ())
    }

    async fn run(&self, exec: &mut Exec<'_>, inputs: ApplyInputs, _raw: &Inputs) -> Result<Report> {
        let set = loaded(&inputs)?;
        let Some(store) = exec.store().cloned() else {
            return Err(Error::Refused(format!(
                "{APPLY_POLICIES} installs rules in the approvals store and runs only as an approved request; \
                 file it with `rancherctl policies apply -f DIR`"
            )));
        };
        let now = Utc::now();
        if exec.is_dry_run() {
            let old = installed::installed(store.as_ref(), now)
                .await
                .map_err(|e| Error::Task(e.to_string()))?;
            let plan = installed::plan(old.as_ref().map(|(_, s)| s.spec()), set.spec());
            let summary = if plan.is_empty() {
                format!("would change nothing: rule set {} is installed", plan.new_hash)
            } else {
                format!("would install rule set {}", plan.new_hash)
            };
            return Ok(Report::new(summary, json!(plan)));
        }
        let Some(request) = exec.request_id().map(str::to_owned) else {
            return Err(Error::Refused(format!(
                "{APPLY_POLICIES} runs only as an approved request; file it with `rancherctl policies apply -f DIR`"
            )));
        };
        let req = store
            .get_request(&request.parse::<RequestId>()?)
            .await
            .map_err(Error::from)?;
        let admins = exec.session().admin_user_ids().await?;
        let approvers: Vec<&str> = req
            .decisions
            .iter()
            .filter(|d| d.vote == Vote::Approve)
            .map(|d| d.principal.id.as_str())
            .collect();
        if approvers.is_empty() || approvers.iter().any(|a| !admins.iter().any(|x| x == a)) {
            return Err(Error::NotAllowed(format!(
                "{APPLY_POLICIES}: policies are installed only on the approval of Rancher admins, and request {request} \
                 was approved by {}; set the workflow's policy back to installer approval \
                 (`rancherctl workflows set-policy {APPLY_POLICIES} --policy installer`) and apply again",
                if approvers.is_empty() { "nobody".to_string() } else { approvers.join(", ") }
            )));
        }
        exec.confirm_claim().await?;
        let outcome = installed::install(
            store.as_ref(),
            inputs.files,
            Some(req.requester.id.clone()),
            Some(request),
            now,
        )
        .await
        .map_err(|e| Error::Task(format!("{APPLY_POLICIES}: {e}")))?;
        let summary = match (&outcome.old_hash, outcome.changed) {
            (_, false) => format!("changed nothing: rule set {} was installed already", outcome.new_hash),
            (Some(old), true) => format!("installed rule set {} (was {old})", outcome.new_hash),
            (None, true) => format!("installed rule set {} (none before)", outcome.new_hash),
        };
        Ok(Report::new(summary, json!(outcome)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(text: &str) -> ApplyInputs {
        let files = BTreeMap::from([("10-rules.yaml".to_string(), text.to_string())]);
        let hash = RuleSet::load(files::spec_of_files(&files).unwrap())
            .unwrap()
            .hash()
            .to_owned();
        ApplyInputs { files, hash }
    }

    #[test]
    fn the_files_must_load_and_hash_to_what_was_planned() {
        let good = inputs("rules: [{id: a, when: 'true', auto_approve: true}]");
        ApplyPolicies.check(&good).unwrap();
        let mut edited = good.clone();
        edited.files.insert(
            "10-rules.yaml".into(),
            "rules: [{id: a, when: 'false', auto_approve: true}]".into(),
        );
        let e = ApplyPolicies.check(&edited).unwrap_err().to_string();
        assert!(e.contains("policies plan"), "{e}");
        let mut broken = good;
        broken
            .files
            .insert("20-x.yaml".into(), "rules: [{id: b, when: 'nope()', deny: x}]".into());
        let e = ApplyPolicies.check(&broken).unwrap_err().to_string();
        assert!(e.contains("rule 2 (b)"), "{e}");
    }
}
