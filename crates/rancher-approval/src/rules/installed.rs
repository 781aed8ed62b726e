//! The rule set installed in a store: what `rancherctl policies apply` installs once admins approve it, what
//! `policies plan` compares files with, what `policies export` writes back, and what the service evaluates.
//!
//! It is kept as one service state entry (namespace [`NAMESPACE`], key [`KEY`]): the policy files by name, their
//! set's hash, who installed it and under which request. The files are the truth; the set is loaded from them.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::files;
use super::{LoadError, RuleSet, RuleSetSpec, RuleSpec};
use crate::store::Store;

/// The store namespace of the installed rule set.
pub const NAMESPACE: &str = "policies";

/// The key of the installed rule set in [`NAMESPACE`].
pub const KEY: &str = "installed";

/// An installed rule set as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstalledPolicies {
    /// The set's hash ([`RuleSet::hash`]).
    pub hash: String,
    /// The policy files by name, as applied.
    pub files: BTreeMap<String, String>,
    /// When it was installed.
    pub installed_at: DateTime<Utc>,
    /// The id of who asked for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// The approval request it was installed under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
}

impl InstalledPolicies {
    /// The set written in these files, loaded.
    pub fn load(&self) -> Result<RuleSet, LoadError> {
        RuleSet::load(files::spec_of_files(&self.files)?)
    }

    /// The set written in these files, loaded and checked against the hash stored with them.
    pub fn load_checked(&self) -> Result<RuleSet, InstalledError> {
        let set = self.load().map_err(|e| InstalledError::Corrupt(e.to_string()))?;
        if set.hash() != self.hash {
            return Err(InstalledError::Corrupt(format!(
                "the files hash to {}, not the {} stored with them",
                set.hash(),
                self.hash
            )));
        }
        Ok(set)
    }
}

/// Why the installed set could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InstalledError {
    /// The store failed.
    #[error("reading the installed policies: {0}")]
    Store(#[from] crate::Error),
    /// The stored entry is not a rule set this version reads.
    #[error("the installed policies cannot be read ({0}); apply the policy files again with `rancherctl policies apply -f DIR`")]
    Corrupt(String),
}

/// What is installed in `store` now: the stored files and the set loaded from them, or `None` when nothing was
/// ever installed (every request then falls back to its workflow's policy). The service evaluates this set.
pub async fn installed(
    store: &dyn Store,
    now: DateTime<Utc>,
) -> Result<Option<(InstalledPolicies, RuleSet)>, InstalledError> {
    let Some(record) = record(store, now).await? else {
        return Ok(None);
    };
    let set = record.load_checked()?;
    Ok(Some((record, set)))
}

/// The stored record of what is installed, not loaded (its `hash` says whether a set in hand is still current).
pub async fn record(store: &dyn Store, now: DateTime<Utc>) -> Result<Option<InstalledPolicies>, InstalledError> {
    let Some(text) = store.state_get(NAMESPACE, KEY, now).await? else {
        return Ok(None);
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| InstalledError::Corrupt(e.to_string()))
}

/// What installing some files did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallOutcome {
    /// The hash installed before, if any.
    pub old_hash: Option<String>,
    /// The hash installed now.
    pub new_hash: String,
    /// False when the same set was installed already (nothing was written).
    pub changed: bool,
}

/// Installs `files` in `store` (after they load), unless the same set is installed already: then nothing changes.
/// `by` and `request` say who asked and under which approval.
pub async fn install(
    store: &dyn Store,
    files: BTreeMap<String, String>,
    by: Option<String>,
    request: Option<String>,
    now: DateTime<Utc>,
) -> Result<InstallOutcome, String> {
    let set = RuleSet::load(files::spec_of_files(&files).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    let old = installed(store, now).await.map_err(|e| e.to_string())?;
    let old_hash = old.map(|(record, _)| record.hash);
    if old_hash.as_deref() == Some(set.hash()) {
        return Ok(InstallOutcome {
            old_hash,
            new_hash: set.hash().to_owned(),
            changed: false,
        });
    }
    let record = InstalledPolicies {
        hash: set.hash().to_owned(),
        files,
        installed_at: now,
        by,
        request,
    };
    let text = serde_json::to_string(&record).map_err(|e| e.to_string())?;
    store
        .state_put(NAMESPACE, KEY, &text, None)
        .await
        .map_err(|e| e.to_string())?;
    Ok(InstallOutcome {
        old_hash,
        new_hash: record.hash,
        changed: true,
    })
}

/// The difference between the installed set and one in files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// The installed set's hash (none when nothing is installed).
    pub old_hash: Option<String>,
    /// The files' set's hash.
    pub new_hash: String,
    /// Rule ids only the files have.
    pub added: Vec<String>,
    /// Rule ids only the installed set has.
    pub removed: Vec<String>,
    /// Rule ids in both whose condition, outcome or description differ.
    pub changed: Vec<String>,
    /// Whether the rules keep their ids but are evaluated in another order.
    pub reordered: bool,
    /// The time zone before and after, when it changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<(Option<String>, Option<String>)>,
}

impl Plan {
    /// Whether applying the files would change nothing.
    pub fn is_empty(&self) -> bool {
        self.old_hash.as_deref() == Some(self.new_hash.as_str())
    }
}

/// What applying `new` over `old` (none: nothing installed) changes, by rule id.
pub fn plan(old: Option<&RuleSetSpec>, new: &RuleSetSpec) -> Plan {
    let empty = RuleSetSpec::default();
    let before = old.unwrap_or(&empty);
    let by_id =
        |s: &RuleSetSpec| -> BTreeMap<String, RuleSpec> { s.rules.iter().map(|r| (r.id.clone(), r.clone())).collect() };
    let (a, b) = (by_id(before), by_id(new));
    let added = new
        .rules
        .iter()
        .filter(|r| !a.contains_key(&r.id))
        .map(|r| r.id.clone())
        .collect();
    let removed = before
        .rules
        .iter()
        .filter(|r| !b.contains_key(&r.id))
        .map(|r| r.id.clone())
        .collect();
    let changed = new
        .rules
        .iter()
        .filter(|r| a.get(&r.id).is_some_and(|o| o != *r))
        .map(|r| r.id.clone())
        .collect();
    let kept = |s: &RuleSetSpec, other: &BTreeMap<String, RuleSpec>| -> Vec<String> {
        s.rules
            .iter()
            .filter(|r| other.contains_key(&r.id))
            .map(|r| r.id.clone())
            .collect()
    };
    let reordered = kept(before, &b) != kept(new, &a);
    let time_zone = (before.time_zone != new.time_zone).then(|| (before.time_zone.clone(), new.time_zone.clone()));
    Plan {
        old_hash: old.map(RuleSet::hash_of),
        new_hash: RuleSet::hash_of(new),
        added,
        removed,
        changed,
        reordered,
        time_zone,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    fn files(rules: &[(&str, &str)]) -> BTreeMap<String, String> {
        rules.iter().map(|(n, t)| (n.to_string(), t.to_string())).collect()
    }

    const A: &str = "rules:\n  - {id: deny-all, when: 'requester.name == \"mallory\"', deny: no}\n  - {id: dev, when: 'true', auto_approve: true}\n";
    const B: &str = "time_zone: Europe/Berlin\nrules:\n  - {id: dev, when: 'false', auto_approve: true}\n  - {id: new, when: 'true', max_duration: 4h}\n";

    #[tokio::test]
    async fn installing_the_same_files_twice_changes_nothing_the_second_time() {
        let store = MemoryStore::new();
        let now = Utc::now();
        assert!(installed(&store, now).await.unwrap().is_none());
        let first = install(
            &store,
            files(&[("10-a.yaml", A)]),
            Some("u-admin".into()),
            Some("r-1".into()),
            now,
        )
        .await
        .unwrap();
        assert!(first.changed);
        assert_eq!(first.old_hash, None);
        let second = install(&store, files(&[("10-a.yaml", A)]), None, Some("r-2".into()), now)
            .await
            .unwrap();
        assert!(!second.changed);
        assert_eq!(second.old_hash.as_deref(), Some(first.new_hash.as_str()));
        // The record is the first one's: nothing was written.
        let (record, set) = installed(&store, now).await.unwrap().unwrap();
        assert_eq!(record.request.as_deref(), Some("r-1"));
        assert_eq!(set.hash(), first.new_hash);
        // Another set replaces it, and says what was there.
        let third = install(&store, files(&[("10-a.yaml", B)]), None, Some("r-3".into()), now)
            .await
            .unwrap();
        assert!(third.changed);
        assert_eq!(third.old_hash.as_deref(), Some(first.new_hash.as_str()));
        assert_eq!(installed(&store, now).await.unwrap().unwrap().1.hash(), third.new_hash);
    }

    #[tokio::test]
    async fn files_that_do_not_load_are_not_installed() {
        let store = MemoryStore::new();
        let err = install(
            &store,
            files(&[("a.yaml", "rules: [{id: x, when: 'nope(1)', deny: d}]")]),
            None,
            None,
            Utc::now(),
        )
        .await
        .unwrap_err();
        assert!(err.contains("rule 1 (x)"), "{err}");
        let err = install(&store, files(&[("../a.yaml", A)]), None, None, Utc::now())
            .await
            .unwrap_err();
        assert!(err.contains("policy file name"), "{err}");
        assert!(installed(&store, Utc::now()).await.unwrap().is_none());
    }

    #[test]
    fn the_plan_names_added_removed_and_changed_rules_and_both_hashes() {
        let a = files::spec_of_files(&files(&[("a.yaml", A)])).unwrap();
        let b = files::spec_of_files(&files(&[("a.yaml", B)])).unwrap();
        let p = plan(Some(&a), &b);
        assert_eq!(p.added, ["new"]);
        assert_eq!(p.removed, ["deny-all"]);
        assert_eq!(p.changed, ["dev"]);
        assert_eq!(p.old_hash, Some(RuleSet::hash_of(&a)));
        assert_eq!(p.new_hash, RuleSet::hash_of(&b));
        assert_eq!(p.time_zone, Some((None, Some("Europe/Berlin".into()))));
        assert!(!p.is_empty());
        // The same set split over two files, or formatted otherwise, is no change.
        let split = files::spec_of_files(&files(&[
            (
                "10.yaml",
                "rules:\n- id: deny-all\n  when: requester.name == \"mallory\"\n  deny: 'no'\n",
            ),
            ("20.yml", "rules: [{auto_approve: true, when: 'true', id: dev}]"),
        ]))
        .unwrap();
        let same = plan(Some(&a), &split);
        assert!(same.is_empty(), "{same:?}");
        assert!(same.added.is_empty() && same.removed.is_empty() && same.changed.is_empty() && !same.reordered);
        // Only the order changed.
        let mut swapped = a.clone();
        swapped.rules.reverse();
        assert!(plan(Some(&a), &swapped).reordered);
        // Nothing installed: every rule is added.
        assert_eq!(plan(None, &a).added, ["deny-all", "dev"]);
    }
}
