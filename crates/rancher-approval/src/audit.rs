//! The append-only, hash-chained audit log.
//!
//! Every entry holds the hash of the one before it (the first holds [`GENESIS_HASH`]), and its own hash is the
//! SHA-256 of a canonical serialisation of all its fields. [`verify`] recomputes the chain, so an edited, removed
//! or reordered entry is found, and, given the head the store recorded separately ([`AuditHead`]), so is a
//! truncated log with entries appended after the cut.
//!
//! What a hash chain cannot do: somebody who can rewrite the whole file, head included, can forge a consistent
//! log. Against that, keep a copy of the head elsewhere (e.g. print it in a report) and check it with
//! [`verify`]`(entries, Some(&saved_head))`: the entry at the saved sequence number must still have that hash.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::canonical::{canonical_value, sha256_hex};
use crate::error::{Error, Result};

/// The `prev_hash` of the first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Domain separation for the entry hash, versioned with the canonical form.
const HASH_DOMAIN: &str = "rancher-approval/audit/v1";

mod detail;
mod kind;

pub use crate::canonical::format_time;
pub use detail::{
    AccessObserved, AuditDetail, Cancelled, Decided, DirectWrite, ExecutionClaimed, ExecutionRefused, Expired,
    Finished, GrantEndedEarly, GrantFacts, GrantNote, GrantOverdue, GrantRevoked, Installed, ObservedChange,
    PolicyChanged, PreviousClaim, Reminded, RequestCreated, TakenOver,
};
pub use kind::AuditKind;

/// One audit log entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Position in the log, from 1, without gaps.
    pub seq: u64,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// The principal id that caused it (`system` for expiry).
    pub actor: String,
    /// What happened.
    pub kind: AuditKind,
    /// The request concerned, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The workflow concerned, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_id: Option<String>,
    /// Details as stored (no secrets: inputs are stored redacted); what the hash covers. Read them typed with
    /// [`AuditEntry::details`].
    pub detail: serde_json::Value,
    /// The previous entry's hash ([`GENESIS_HASH`] for the first).
    pub prev_hash: String,
    /// SHA-256 (hex) over the canonical form of every field above.
    pub hash: String,
}

/// The last entry's position and hash, which a store keeps apart from the entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditHead {
    /// Sequence number of the last entry (0 for an empty log).
    pub seq: u64,
    /// Its hash ([`GENESIS_HASH`] for an empty log).
    pub hash: String,
}

impl AuditHead {
    /// The head of an empty log.
    pub fn genesis() -> Self {
        Self {
            seq: 0,
            hash: GENESIS_HASH.into(),
        }
    }
}

impl Default for AuditHead {
    fn default() -> Self {
        Self::genesis()
    }
}

/// An entry before it is numbered and chained.
#[derive(Debug, Clone)]
pub(crate) struct AuditDraft {
    pub actor: String,
    pub request_id: Option<String>,
    pub workflow_id: Option<String>,
    pub detail: AuditDetail,
}

impl AuditDraft {
    /// Numbers and chains the draft after `head`.
    pub(crate) fn seal(self, head: &AuditHead, at: DateTime<Utc>) -> AuditEntry {
        let mut entry = AuditEntry {
            seq: head.seq + 1,
            at,
            actor: self.actor,
            kind: self.detail.kind(),
            request_id: self.request_id,
            workflow_id: self.workflow_id,
            detail: self.detail.to_value(),
            prev_hash: head.hash.clone(),
            hash: String::new(),
        };
        entry.hash = entry.compute_hash();
        entry
    }
}

impl AuditEntry {
    /// The hash this entry should carry, recomputed from its fields.
    pub fn compute_hash(&self) -> String {
        let canonical = serde_json::json!([
            HASH_DOMAIN,
            self.seq,
            format_time(self.at),
            self.actor,
            self.kind.as_str(),
            self.request_id,
            self.workflow_id,
            canonical_value(&self.detail),
            self.prev_hash,
        ]);
        sha256_hex(canonical.to_string().as_bytes())
    }

    /// The detail, typed (what cannot be read is [`AuditDetail::Other`]).
    pub fn details(&self) -> AuditDetail {
        AuditDetail::read(&self.kind, &self.detail)
    }

    /// This entry as a head.
    pub fn head(&self) -> AuditHead {
        AuditHead {
            seq: self.seq,
            hash: self.hash.clone(),
        }
    }
}

/// Verifies a whole log: numbering from 1 without gaps, each `prev_hash` equal to the previous hash, each hash
/// recomputed. If `head` is given (the store's separately kept head, or one saved elsewhere earlier), the log must
/// reach it and hold that hash at that position. Returns the number of entries, or [`Error::AuditBroken`] naming
/// the first bad sequence number.
pub fn verify(entries: &[AuditEntry], head: Option<&AuditHead>) -> Result<u64> {
    let broken = |seq: u64, problem: String| Err(Error::AuditBroken { seq, problem });
    let mut prev = GENESIS_HASH.to_string();
    for (i, e) in entries.iter().enumerate() {
        let expected_seq = i as u64 + 1;
        if e.seq != expected_seq {
            return broken(
                expected_seq,
                format!(
                    "expected entry {expected_seq} but found entry {}: an entry was removed or moved",
                    e.seq
                ),
            );
        }
        if e.prev_hash != prev {
            return broken(
                e.seq,
                "its previous-hash does not match the entry before it: entries were removed, reordered or replaced"
                    .into(),
            );
        }
        if e.compute_hash() != e.hash {
            return broken(
                e.seq,
                "its content does not match its hash: the entry was edited".into(),
            );
        }
        prev = e.hash.clone();
    }
    let count = entries.len() as u64;
    if let Some(head) = head {
        if head.seq > count {
            return broken(
                count + 1,
                format!(
                    "the log ends at entry {count} but the recorded head is entry {}: entries were cut off",
                    head.seq
                ),
            );
        }
        if head.seq > 0 && entries[head.seq as usize - 1].hash != head.hash {
            return broken(
                head.seq,
                "its hash differs from the recorded head: the log was rewritten".into(),
            );
        }
        if head.seq == 0 && head.hash != GENESIS_HASH {
            return broken(1, "the recorded head is malformed".into());
        }
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn log(n: u64) -> Vec<AuditEntry> {
        let mut head = AuditHead::genesis();
        let t: DateTime<Utc> = "2025-01-01T00:00:00.123456789Z".parse().unwrap();
        (0..n)
            .map(|i| {
                let e = AuditDraft {
                    actor: format!("u-{i}"),
                    request_id: Some(format!("req-{i}")),
                    workflow_id: None,
                    detail: AuditDetail::Other {
                        kind: AuditKind::ALL[i as usize % AuditKind::ALL.len()].clone(),
                        detail: json!({"b": i, "a": [1, {"z": 1, "y": 2}]}),
                    },
                }
                .seal(&head, t + chrono::TimeDelta::seconds(i as i64));
                head = e.head();
                e
            })
            .collect()
    }

    fn broken_at(r: Result<u64>) -> u64 {
        match r {
            Err(Error::AuditBroken { seq, .. }) => seq,
            other => panic!("expected a broken chain, got {other:?}"),
        }
    }

    #[test]
    fn a_good_chain_verifies() {
        let entries = log(6);
        let head = entries.last().unwrap().head();
        assert_eq!(verify(&entries, Some(&head)).unwrap(), 6);
        assert_eq!(verify(&[], Some(&AuditHead::genesis())).unwrap(), 0);
        assert_eq!(entries[0].prev_hash, GENESIS_HASH);
        assert_eq!(entries[1].prev_hash, entries[0].hash);
    }

    #[test]
    fn hash_ignores_key_order_but_not_values() {
        let mut e = log(1).remove(0);
        let h = e.hash.clone();
        e.detail = json!({"a": [1, {"y": 2, "z": 1}], "b": 0});
        assert_eq!(e.compute_hash(), h);
        e.detail = json!({"a": [1, {"y": 2, "z": 1}], "b": 1});
        assert_ne!(e.compute_hash(), h);
    }

    #[test]
    fn an_edited_entry_is_found() {
        for field in 0..6 {
            let mut entries = log(5);
            let e = &mut entries[2];
            match field {
                0 => e.actor = "u-mallory".into(),
                1 => e.detail = json!({"b": 99}),
                2 => e.kind = AuditKind::Installed,
                3 => e.at += chrono::TimeDelta::nanoseconds(1),
                4 => e.request_id = None,
                _ => e.workflow_id = Some("wf".into()),
            }
            assert_eq!(broken_at(verify(&entries, None)), 3, "field {field}");
        }
    }

    #[test]
    fn an_edited_entry_with_recomputed_hash_breaks_the_next_link() {
        let mut entries = log(5);
        entries[1].actor = "u-mallory".into();
        entries[1].hash = entries[1].compute_hash();
        assert_eq!(broken_at(verify(&entries, None)), 3);
    }

    #[test]
    fn a_removed_entry_is_found() {
        let mut entries = log(5);
        entries.remove(2);
        assert_eq!(broken_at(verify(&entries, None)), 3);
        // Renumbering after the cut does not help: the chain link breaks.
        let mut entries = log(5);
        entries.remove(2);
        for (i, e) in entries.iter_mut().enumerate() {
            e.seq = i as u64 + 1;
        }
        assert_eq!(broken_at(verify(&entries, None)), 3);
    }

    #[test]
    fn a_reordered_log_is_found() {
        let mut entries = log(5);
        entries.swap(1, 3);
        assert_eq!(broken_at(verify(&entries, None)), 2);
        // Swapping contents but keeping the numbers in place.
        let mut entries = log(5);
        entries.swap(1, 3);
        entries[1].seq = 2;
        entries[3].seq = 4;
        assert_eq!(broken_at(verify(&entries, None)), 2);
    }

    #[test]
    fn truncation_is_found_against_the_head() {
        let full = log(6);
        let head = full.last().unwrap().head();
        let cut = &full[..4];
        assert_eq!(verify(cut, None).unwrap(), 4, "a cut chain is consistent on its own");
        assert_eq!(broken_at(verify(cut, Some(&head))), 5);
    }

    #[test]
    fn truncate_and_append_is_found_against_the_head() {
        let full = log(6);
        let head = full.last().unwrap().head();
        let mut forged = full[..4].to_vec();
        // Append two well-formed entries after the cut, reaching the old length.
        for _ in 0..2 {
            let last = forged.last().unwrap().head();
            let e = AuditDraft {
                actor: "u-mallory".into(),
                request_id: None,
                workflow_id: None,
                detail: AuditDetail::Other {
                    kind: AuditKind::Decided,
                    detail: json!({}),
                },
            }
            .seal(&last, Utc::now());
            forged.push(e);
        }
        assert_eq!(verify(&forged, None).unwrap(), 6);
        assert_eq!(broken_at(verify(&forged, Some(&head))), 6);
    }

    #[test]
    fn kinds_round_trip() {
        for k in AuditKind::ALL {
            assert_eq!(AuditKind::parse(k.as_str()), Some(k.clone()));
            assert_eq!(serde_json::to_value(&k).unwrap(), json!(k.as_str()));
        }
        assert_eq!(AuditKind::parse("nope"), None);
        let other: AuditKind = serde_json::from_value(json!("made_up_later")).unwrap();
        assert_eq!(other, AuditKind::Other("made_up_later".into()));
        assert_eq!(serde_json::to_value(&other).unwrap(), json!("made_up_later"));
        assert_eq!(other.to_string(), "made_up_later");
    }

    /// An entry of a kind this build does not know keeps its name and detail, verifies, and reads as `Other`.
    #[test]
    fn an_unknown_kind_verifies_and_reads_as_other() {
        let mut entries = log(3);
        let t: DateTime<Utc> = "2025-02-01T00:00:00Z".parse().unwrap();
        let detail = json!({"what": "a kind from a newer build", "n": 1});
        let e = AuditDraft {
            actor: "u-later".into(),
            request_id: None,
            workflow_id: None,
            detail: AuditDetail::Other {
                kind: AuditKind::from_stored("made_up_later"),
                detail: detail.clone(),
            },
        }
        .seal(&entries[2].head(), t);
        entries.push(e);
        let reread: Vec<AuditEntry> = entries
            .iter()
            .map(|e| serde_json::from_str(&serde_json::to_string(e).unwrap()).unwrap())
            .collect();
        assert_eq!(reread, entries);
        assert_eq!(verify(&reread, Some(&reread[3].head())).unwrap(), 4);
        assert_eq!(reread[3].kind.as_str(), "made_up_later");
        assert_eq!(
            reread[3].details(),
            AuditDetail::Other {
                kind: AuditKind::Other("made_up_later".into()),
                detail
            }
        );
        // A known kind whose detail this build cannot read is kept as stored too.
        assert!(matches!(
            reread[0].details(),
            AuditDetail::Other {
                kind: AuditKind::RequestCreated,
                ..
            }
        ));
    }
}
