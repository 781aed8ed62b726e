//! The inputs of the access-control workflows as structs, parsed once when a flow is entered ([`FlowInputs`],
//! parsed by [`super::workflows`]).
//! Requests keep their inputs as JSON (the digest that binds held secrets, and the files pinned at filing, are
//! over that JSON); the flows read the parsed structs.

use std::collections::{BTreeMap, BTreeSet};

use serde::de::{DeserializeOwned, IgnoredAny};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::catalog::{self, WorkflowDef};
use crate::error::{Error, Result};
use crate::workflow::Inputs;

/// The parsed inputs of one access-control flow.
#[derive(Debug, Clone)]
pub(crate) enum FlowInputs {
    /// `access-control-status`: none.
    Status,
    /// `access-control-enable` (boxed: by far the largest).
    Enable(Box<EnableInputs>),
    /// `access-control-allow` and `access-control-disallow`.
    ChangeAllowed(ChangeAllowedInputs),
    /// `access-control-disable`.
    Disable(DisableInputs),
    /// `access-control-switch-plan`.
    SwitchPlan(SwitchPlanInputs),
    /// `identities-search`.
    Search(SearchInputs),
}

/// A workflow without inputs.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NoInputs {}

/// A required text input, or the runner's usual words for its absence.
pub(crate) fn need<'a>(def: &WorkflowDef, name: &str, value: &'a Option<String>) -> Result<&'a str> {
    value.as_deref().ok_or_else(|| Error::Input {
        workflow: def.id.into(),
        input: name.into(),
        message: format!("is required (e.g. --input {name}=...)"),
    })
}

/// Reads a value the runner stored, or `None` when this version cannot read it (the flow then acts as if it
/// were absent, as it always has for such a value).
fn readable_or_none<'de, D: serde::Deserializer<'de>, T: DeserializeOwned>(
    d: D,
) -> std::result::Result<Option<T>, D::Error> {
    Ok(serde_json::from_value(Value::deserialize(d)?).ok())
}

/// The inputs of `access-control-enable`, as people give them and approval requests store them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EnableInputs {
    /// The provider.
    #[serde(default)]
    pub provider: Option<String>,
    /// The provider settings: inline, or the path of a file.
    #[serde(default)]
    pub config: Option<ConfigInput>,
    /// The access mode.
    #[serde(default)]
    pub mode: Option<String>,
    /// Identities to allow, comma-separated.
    #[serde(default)]
    pub allow: Option<String>,
    /// The test user's login.
    #[serde(default, rename = "test-user")]
    pub test_user: Option<String>,
    /// The file holding the test user's password.
    #[serde(default, rename = "test-password-file")]
    pub test_password_file: Option<String>,
    /// The file holding an OAuth code.
    #[serde(default, rename = "test-code-file")]
    pub test_code_file: Option<String>,
    /// The test user's password inline, exactly as given (never trimmed: see [`EnableInputs::parse`]).
    #[serde(default, rename = "test-password")]
    pub test_password: Option<String>,
    /// An OAuth code inline.
    #[serde(default, rename = "test-code")]
    pub test_code: Option<String>,
    /// Set when a request with inline settings is filed: the handle of what the filing service holds.
    #[serde(default, rename = "held-secrets", deserialize_with = "readable_or_none")]
    pub held_secrets: Option<HeldSecrets>,
    /// Set when a request is filed: each file's absolute path and SHA-256.
    #[serde(default, rename = "pinned-files", deserialize_with = "readable_or_none")]
    pub pinned_files: Option<BTreeMap<String, FilePin>>,
    /// Set when a request is filed: the settings as approvers see them (only shown, never read back).
    #[serde(default, rename = "settings-shown")]
    #[allow(dead_code)] // accepted, never read: the settings themselves come from the held secrets or the files
    settings_shown: Option<IgnoredAny>,
    /// The inputs given with a value other than null, even an empty one (an empty `test-password` still means
    /// the credentials came inline).
    #[serde(skip)]
    given: BTreeSet<String>,
}

impl EnableInputs {
    /// Parses the inputs of `access-control-enable`. Text is trimmed as for every workflow, except the inline
    /// password, which is taken exactly as given.
    pub(crate) fn parse(raw: &Inputs) -> Result<EnableInputs> {
        let mut parsed: EnableInputs = raw.parse(&catalog::ACCESS_CONTROL_ENABLE)?;
        if let Some(m) = raw.as_object() {
            parsed.given = m.iter().filter(|(_, v)| !v.is_null()).map(|(k, _)| k.clone()).collect();
            parsed.test_password = m.get("test-password").and_then(Value::as_str).map(str::to_string);
        }
        Ok(parsed)
    }

    /// Whether `name` was given with a value other than null.
    pub(crate) fn has(&self, name: &str) -> bool {
        self.given.contains(name)
    }

    /// Whether the settings or the test credentials came inline (`config` as an object, `test-password`,
    /// `test-code`).
    pub(crate) fn given_inline(&self) -> bool {
        matches!(self.config, Some(ConfigInput::Inline(_))) || self.has("test-password") || self.has("test-code")
    }

    /// The file input `name` (`config`, `test-password-file` or `test-code-file`): its path, trimmed; `None`
    /// when absent or empty.
    pub(crate) fn file(&self, name: &str) -> Result<Option<&str>> {
        Ok(match name {
            "config" => return self.config_path(),
            "test-password-file" => self.test_password_file.as_deref(),
            "test-code-file" => self.test_code_file.as_deref(),
            _ => None,
        })
    }

    /// The `config` input as the path of a settings file; `None` when absent or empty. Inline settings are not a
    /// path.
    pub(crate) fn config_path(&self) -> Result<Option<&str>> {
        match &self.config {
            None => Ok(None),
            Some(ConfigInput::Path(p)) => Ok(Some(p.trim()).filter(|p| !p.is_empty())),
            Some(ConfigInput::Inline(m)) => Err(not_text(&Value::Object(m.clone()))),
            Some(ConfigInput::Other(v)) => Err(not_text(v)),
        }
    }

    /// Sets the path of file input `name` (to its absolute form, when a request is filed).
    pub(crate) fn set_file(&mut self, name: &str, path: String) {
        match name {
            "config" => self.config = Some(ConfigInput::Path(path)),
            "test-password-file" => self.test_password_file = Some(path),
            "test-code-file" => self.test_code_file = Some(path),
            _ => {}
        }
    }
}

/// `config` given as something other than a path where a path is read.
fn not_text(v: &Value) -> Error {
    Error::Input {
        workflow: catalog::ACCESS_CONTROL_ENABLE.id.into(),
        input: "config".into(),
        message: format!("must be text, got {v}"),
    }
}

/// The `config` input of `access-control-enable`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum ConfigInput {
    /// The path of a JSON or YAML file of settings (local runs).
    Path(String),
    /// The settings inline, as a JSON object.
    Inline(Map<String, Value>),
    /// Anything else: refused where it is read, with the cause.
    Other(Value),
}

/// What a filed request records about the secrets its filing service holds in memory.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct HeldSecrets {
    /// The handle to take them by.
    #[serde(default)]
    pub handle: String,
}

/// One file pinned when a request was filed.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct FilePin {
    /// Its absolute path.
    #[serde(default)]
    pub path: Option<String>,
    /// The SHA-256 of its content, hex.
    #[serde(default)]
    pub sha256: Option<String>,
}

/// The inputs of `access-control-allow` and `access-control-disallow`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChangeAllowedInputs {
    /// Names, logins or ids, comma-separated (ids once filed).
    #[serde(default)]
    pub identities: Option<String>,
    /// A new access mode.
    #[serde(default)]
    pub mode: Option<String>,
    /// The provider (default: the enabled one).
    #[serde(default)]
    pub provider: Option<String>,
}

/// The inputs of `access-control-disable`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DisableInputs {
    /// The provider (default: the enabled one).
    #[serde(default)]
    pub provider: Option<String>,
    /// The code naming what Rancher 2.x deletes.
    #[serde(default)]
    pub acknowledge: Option<String>,
    /// What Rancher will delete, pinned for approvers when the request was filed (set there, never by people).
    #[serde(default)]
    pub deletions: Option<PinnedDeletions>,
}

/// The deletions a disable request pinned; only their code is read back (the rest is for people).
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct PinnedDeletions {
    /// The code naming the pinned set.
    #[serde(default)]
    pub acknowledge: Option<String>,
}

/// The inputs of `access-control-switch-plan`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SwitchPlanInputs {
    /// The provider to switch to.
    #[serde(default)]
    pub to: Option<String>,
}

/// The inputs of `identities-search`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SearchInputs {
    /// A name or login prefix.
    #[serde(default)]
    pub name: Option<String>,
    /// `user` or `group`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}
