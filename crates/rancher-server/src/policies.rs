//! `serve --policies DIR`: the rule set the service judges requests by when they are filed, loaded once at start.
//! A file that does not load stops the start, naming the file, the rule and the fix.

use std::path::Path;
use std::sync::Arc;

use rancher_approval::rules::{files, from_yaml, RuleSet, RuleSetSpec};

use crate::error::{Error, Result};

/// Loads the rule files of `dir` (`*.yaml`, `*.yml`, in file-name order).
pub fn load(dir: &Path) -> Result<Arc<RuleSet>> {
    let fail = |msg: String| Error::Config(format!("--policies {}: {msg}", dir.display()));
    let set = match files::load_dir(dir) {
        Ok(set) => set,
        Err(e) => return Err(fail(locate(dir, &e.at).map_or(e.to_string(), |f| format!("{f}: {e}")))),
    };
    if set.is_empty() {
        return Err(fail(
            "holds no rules; put YAML rule files there (see docs/approvals.md), or leave --policies out".into(),
        ));
    }
    tracing::info!(
        dir = %dir.display(),
        ruleset = %set.hash(),
        rules = set.spec().rules.len(),
        schedules = set.schedules().len(),
        "policy rules loaded"
    );
    Ok(Arc::new(set))
}

/// What the runners judge filed requests by: the rules of `--policies`, else those installed in the store by
/// `rancherctl policies apply` (read at each filing, so every replica follows an apply), with the configured
/// on-call providers, facts looked up with the service account `service`.
pub(crate) fn judging(
    config: &crate::config::ServerConfig,
    service: &rancher_workflows::Session,
) -> Result<rancher_workflows::policies::Policies> {
    let p = match &config.policies {
        Some(dir) => rancher_workflows::policies::Policies::new(load(dir)?),
        None => rancher_workflows::policies::Policies::installed(config.store.clone()),
    };
    let mut p = p.with_lookups(service.clone());
    if config.oncall.any() {
        let http = crate::webhooks::http_client(config);
        p = p.with_oncall(Arc::new(crate::oncall::OnCallClients::new(http, config.oncall.clone())));
    }
    Ok(p)
}

/// The file that holds rule `N` when `at` is `rule N ...` (the loader numbers rules across all files).
fn locate(dir: &Path, at: &str) -> Option<String> {
    let n: usize = at.strip_prefix("rule ")?.split_whitespace().next()?.parse().ok()?;
    let mut seen = 0usize;
    for path in files::policy_files(dir).ok()? {
        let text = std::fs::read_to_string(&path).ok()?;
        let spec: RuleSetSpec = from_yaml(&text).ok()?;
        seen += spec.rules.len();
        if n <= seen {
            return Some(path.display().to_string());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(d.path().join(name), text).unwrap();
        }
        d
    }

    #[test]
    fn a_good_set_loads_and_a_bad_rule_names_its_file_the_rule_and_the_fix() {
        let ok = "rules:\n  - id: dev-short\n    when: 'cluster.labels.env == \"dev\"'\n    auto_approve: true\n";
        let d = dir_with(&[("10-ok.yaml", ok)]);
        let set = load(d.path()).unwrap();
        assert_eq!(set.spec().rules.len(), 1);

        let bad = "rules:\n  - id: broken\n    when: 'nosuchthing.x == 1'\n    deny: refused\n";
        let d = dir_with(&[("10-ok.yaml", ok), ("20-bad.yaml", bad)]);
        let e = load(d.path()).unwrap_err().to_string();
        assert!(e.contains("20-bad.yaml"), "{e}");
        assert!(e.contains("broken"), "{e}");
        assert!(e.starts_with("--policies "), "{e}");

        let d = dir_with(&[("30-junk.yaml", "rules: [[[")]);
        let e = load(d.path()).unwrap_err().to_string();
        assert!(e.contains("30-junk.yaml"), "{e}");

        let empty = tempfile::tempdir().unwrap();
        let e = load(empty.path()).unwrap_err().to_string();
        assert!(e.contains("no rules"), "{e}");
        let e = load(&empty.path().join("missing")).unwrap_err().to_string();
        assert!(e.contains("missing"), "{e}");
    }
}
