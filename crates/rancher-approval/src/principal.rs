//! Who asks and who decides: Rancher user identities.

use serde::{Deserialize, Serialize};

/// A Rancher user identity as this crate sees it.
///
/// `groups` holds the group principal ids (e.g. `github_team://123`) the user belongs to, as resolved by the caller
/// at the time of a decision (see [`crate::ApproverDirectory`]); it is stored with each decision as a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Principal {
    /// The Rancher user id, e.g. `u-abc12` or `user-xyz12`.
    pub id: String,
    /// The login name, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The display name, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Group principal ids the user is a member of.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
}

impl Principal {
    /// A principal known only by its user id.
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            username: None,
            display_name: None,
            groups: Vec::new(),
        }
    }

    /// Sets the login name.
    pub fn with_username(mut self, username: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self
    }

    /// Sets the display name.
    pub fn with_display_name(mut self, display_name: impl Into<String>) -> Self {
        self.display_name = Some(display_name.into());
        self
    }

    /// Adds group memberships.
    pub fn with_groups<I, S>(mut self, groups: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.groups.extend(groups.into_iter().map(Into::into));
        self
    }

    /// Whether this principal is a member of the group principal `group`.
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }
}

impl std::fmt::Display for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.username.as_deref().or(self.display_name.as_deref()) {
            Some(name) => write!(f, "{name} ({})", self.id),
            None => f.write_str(&self.id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_json() {
        let p = Principal::new("u-abc12")
            .with_username("alice")
            .with_groups(["github_team://1"]);
        assert_eq!(p.to_string(), "alice (u-abc12)");
        assert_eq!(Principal::new("u-x").to_string(), "u-x");
        assert!(p.in_group("github_team://1"));
        assert!(!p.in_group("github_team://2"));
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"id": "u-abc12", "username": "alice", "groups": ["github_team://1"]})
        );
        let back: Principal = serde_json::from_value(serde_json::json!({"id": "u-abc12"})).unwrap();
        assert_eq!(back, Principal::new("u-abc12"));
    }
}
