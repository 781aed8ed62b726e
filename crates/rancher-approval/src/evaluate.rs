//! Deciding where a request stands: a pure function of (policy, request, decisions, now).
//!
//! # Eligibility facts are resolved by the caller, then passed in
//!
//! Some facts live on the Rancher server: who the fallback approvers are (users holding the `admin` global role)
//! and which groups a reviewer belongs to. This crate has no HTTP, so the caller resolves them first, through an
//! [`ApproverDirectory`] (see [`resolve_reviewer`]), and hands them over with the decision:
//! the reviewer's groups in [`Principal::groups`] and the rest in an [`EligibilityContext`]. Both are stored with
//! the decision as a snapshot. [`evaluate`] then judges each decision by the facts that held when it was made, so
//! the verdict never changes later because somebody's role changed, and evaluation stays pure and repeatable.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::basics::Vote;
use crate::error::{DirectoryError, Error, Ineligibility, Result};
use crate::policy::{ApproverRef, Combine, Count, Policy, Rule, Threshold};
use crate::principal::Principal;

/// Facts about the deployment that the caller resolved at decision time and that this crate cannot know.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EligibilityContext {
    /// User ids who may stand in when the installer may not approve (for Rancher: every user holding the
    /// `admin` global role). Only consulted by the `installer` policy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fallback_approvers: Vec<String>,
}

impl EligibilityContext {
    /// A context naming these fallback approvers.
    pub fn with_fallback_approvers<I, S>(approvers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            fallback_approvers: approvers.into_iter().map(Into::into).collect(),
        }
    }
}

/// What evaluation needs to know about a request (see [`crate::ApprovalRequest::facts`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestFacts {
    /// The requester's user id.
    pub requester: String,
    /// The installer's user id, if the workflow has an installation.
    pub installer: Option<String>,
    /// Principal ids the request acts on.
    pub targets: Vec<String>,
    /// When a pending request expires; decisions at or after this instant do not count.
    pub expires_at: DateTime<Utc>,
}

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Still waiting for decisions.
    Pending,
    /// Enough eligible approvals arrived in time.
    Approved,
    /// An eligible reviewer denied it in time.
    Denied,
    /// It was not decided before it expired.
    Expired,
}

/// The caller's view of the deployment's people, used to resolve eligibility facts before a decision.
///
/// Implemented by the workflows layer over the Rancher API; tests implement it over a fixed list.
pub trait ApproverDirectory {
    /// User ids of the fallback approvers (for Rancher: every user holding the `admin` global role).
    fn fallback_approvers(&self) -> Result<Vec<String>, DirectoryError>;
    /// Whether the user `principal_id` is a member of the group principal `group_id`.
    fn is_member(&self, principal_id: &str, group_id: &str) -> Result<bool, DirectoryError>;
}

/// Resolves, through `directory`, the facts needed to judge `reviewer` under `policy`: returns the reviewer with
/// the policy's groups they belong to added to [`Principal::groups`], and the [`EligibilityContext`] to pass to
/// [`crate::Store::decide`]. Only asks the directory what the policy needs.
pub fn resolve_reviewer(
    policy: &Policy,
    reviewer: &Principal,
    directory: &dyn ApproverDirectory,
) -> Result<(Principal, EligibilityContext)> {
    let mut resolved = reviewer.clone();
    let mut context = EligibilityContext::default();
    match &policy.rule {
        Rule::None => {}
        Rule::Installer { fallback } => {
            if *fallback {
                context.fallback_approvers = directory
                    .fallback_approvers()
                    .map_err(|source| Error::Directory { source })?;
            }
        }
        Rule::Approvers { thresholds, .. } => {
            for group in thresholds.iter().flat_map(|t| &t.of).filter_map(|r| match r {
                ApproverRef::Group(g) => Some(g),
                ApproverRef::User(_) => None,
            }) {
                if !resolved.in_group(group)
                    && directory
                        .is_member(&reviewer.id, group)
                        .map_err(|source| Error::Directory { source })?
                {
                    resolved.groups.push(group.clone());
                }
            }
        }
    }
    Ok((resolved, context))
}

/// The personal bars every policy applies: self-approval and being a target.
fn personal_bar(policy: &Policy, facts: &RequestFacts, id: &str) -> Option<Ineligibility> {
    if id == facts.requester && !policy.options.allow_self_approval {
        Some(Ineligibility::SelfApproval)
    } else if facts.targets.iter().any(|t| t == id) && !policy.options.allow_target_approval {
        Some(Ineligibility::TargetOfRequest)
    } else {
        None
    }
}

/// Whether `reviewer` may decide (approve or deny) on a request with these facts under `policy`.
///
/// The same test decides whether a deny counts: only an eligible reviewer can deny.
pub fn check_eligibility(
    policy: &Policy,
    facts: &RequestFacts,
    reviewer: &Principal,
    context: &EligibilityContext,
) -> Result<(), Ineligibility> {
    let personal = || {
        personal_bar(policy, facts, &reviewer.id)
            .or_else(|| {
                // A grant to a group (or to one of the reviewer's principal ids) benefits every member.
                let member = facts
                    .targets
                    .iter()
                    .any(|t| reviewer.in_group(t) || t.strip_prefix("local://") == Some(reviewer.id.as_str()));
                (member && !policy.options.allow_target_approval).then_some(Ineligibility::TargetOfRequest)
            })
            .map_or(Ok(()), Err)
    };
    match &policy.rule {
        Rule::None => Err(Ineligibility::NotAnApprover {
            expected: "nobody: this policy needs no approval".into(),
        }),
        Rule::Installer { fallback } => {
            let installer_can = facts
                .installer
                .as_deref()
                .is_some_and(|i| personal_bar(policy, facts, i).is_none());
            if facts.installer.as_deref() == Some(reviewer.id.as_str()) {
                return personal();
            }
            if !installer_can && *fallback && context.fallback_approvers.contains(&reviewer.id) {
                return personal();
            }
            let expected = match (facts.installer.as_deref().filter(|_| installer_can), fallback) {
                (Some(installer), _) => format!("the installer, {installer}"),
                (None, true) => "a fallback approver (another admin), since the installer may not approve".into(),
                (None, false) => {
                    "the installer, who may not approve this request; ask them to change the policy".into()
                }
            };
            Err(Ineligibility::NotAnApprover { expected })
        }
        Rule::Approvers { thresholds, .. } => {
            if thresholds.iter().any(|t| t.names(reviewer)) {
                personal()
            } else {
                let list: Vec<String> = thresholds.iter().map(ToString::to_string).collect();
                Err(Ineligibility::NotAnApprover {
                    expected: list.join(" or "),
                })
            }
        }
    }
}

/// Where a request stands under `policy`, given its decisions, at `now`. Pure and deterministic.
///
/// Rules, applied to the decisions in time order (ties keep their given order):
/// - decisions made at or after `facts.expires_at` are ignored: expiry wins over late approvals;
/// - decisions by reviewers who are not eligible ([`check_eligibility`], judged with the context stored with the
///   decision) are ignored, so the requester never counts unless self-approval is allowed;
/// - the first eligible deny before the approvals meet the policy denies the request;
/// - each principal counts once, however often they approve;
/// - once the approvals meet the policy the request is approved;
/// - otherwise it is expired if `now >= expires_at`, else pending.
///
/// A `none` policy is approved at once.
pub fn evaluate(policy: &Policy, facts: &RequestFacts, decisions: &[DecisionRecord], now: DateTime<Utc>) -> Verdict {
    if !policy.needs_approval() {
        return Verdict::Approved;
    }
    let mut in_order: Vec<&DecisionRecord> = decisions.iter().collect();
    in_order.sort_by_key(|d| d.decided_at);
    let mut approvers: Vec<&Principal> = Vec::new();
    for d in in_order {
        if d.decided_at >= facts.expires_at {
            break;
        }
        if check_eligibility(policy, facts, &d.principal, &d.context).is_err() {
            continue;
        }
        match d.vote {
            Vote::Deny => return Verdict::Denied,
            Vote::Approve => {
                if !approvers.iter().any(|a| a.id == d.principal.id) {
                    approvers.push(&d.principal);
                }
            }
        }
        if met(policy, &approvers) {
            return Verdict::Approved;
        }
    }
    if now >= facts.expires_at {
        Verdict::Expired
    } else {
        Verdict::Pending
    }
}

/// Whether these (eligible, distinct) approvers satisfy the policy.
fn met(policy: &Policy, approvers: &[&Principal]) -> bool {
    match &policy.rule {
        Rule::None => true,
        // Eligibility already restricts approvers to the installer or, when the installer may not, a fallback.
        Rule::Installer { .. } => !approvers.is_empty(),
        Rule::Approvers { combine, thresholds } => {
            let mut results = thresholds.iter().map(|t| threshold_met(t, approvers));
            match combine {
                Combine::Any => results.any(|m| m),
                Combine::All => results.all(|m| m),
            }
        }
    }
}

fn threshold_met(t: &Threshold, approvers: &[&Principal]) -> bool {
    let named: Vec<&Principal> = approvers.iter().copied().filter(|p| t.names(p)).collect();
    match t.count {
        Count::AtLeast(n) => named.len() >= n as usize,
        Count::All => covers_all(&t.of, &named),
    }
}

/// Whether every entry of `refs` can be matched to its own distinct principal (bipartite matching, Kuhn).
fn covers_all(refs: &[ApproverRef], people: &[&Principal]) -> bool {
    fn augment(
        r: usize,
        refs: &[ApproverRef],
        people: &[&Principal],
        owner: &mut [Option<usize>],
        seen: &mut [bool],
    ) -> bool {
        for j in 0..people.len() {
            if seen[j] || !refs[r].matches(people[j]) {
                continue;
            }
            seen[j] = true;
            let free = match owner[j] {
                None => true,
                Some(other) => augment(other, refs, people, owner, seen),
            };
            if free {
                owner[j] = Some(r);
                return true;
            }
        }
        false
    }
    if people.len() < refs.len() {
        return false;
    }
    let mut owner = vec![None; people.len()];
    (0..refs.len()).all(|r| augment(r, refs, people, &mut owner, &mut vec![false; people.len()]))
}

/// A recorded decision, with the facts it was judged on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionRecord {
    /// Who decided (with their group memberships at the time).
    pub principal: Principal,
    /// Approve or deny.
    pub vote: Vote,
    /// Why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When.
    pub decided_at: DateTime<Utc>,
    /// The eligibility facts the caller resolved for this decision (e.g. the fallback approvers at the time).
    #[serde(default)]
    pub context: EligibilityContext,
    /// The request's content hash this decision was made on; execution refuses a request whose content differs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_hash: Option<String>,
}

#[cfg(test)]
mod tests;
