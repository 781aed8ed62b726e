//! What people call the objects a request acts on, looked up when it is filed and stored with it: the users and
//! groups it names, the roles, the clusters and projects. Covered by the request's content hash, so the names an
//! approver reads are the ones pinned when the request was made, never looked up again later.

use serde::{Deserialize, Serialize};

/// What kind of object a pinned name belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NamedKind {
    /// A Rancher user (or a user principal of an auth provider).
    User,
    /// A group principal.
    Group,
    /// A global role.
    GlobalRole,
    /// A cluster or project role template.
    RoleTemplate,
    /// A cluster.
    Cluster,
    /// A project.
    Project,
}

impl NamedKind {
    /// The kind in words: `user`, `group`, `global role`, `role template`, `cluster`, `project`.
    pub fn as_str(self) -> &'static str {
        match self {
            NamedKind::User => "user",
            NamedKind::Group => "group",
            NamedKind::GlobalRole => "global role",
            NamedKind::RoleTemplate => "role template",
            NamedKind::Cluster => "cluster",
            NamedKind::Project => "project",
        }
    }
}

/// One object a request acts on, with the names it had when the request was filed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedTarget {
    /// What it is.
    pub kind: NamedKind,
    /// Its id on the server (`u-tt2kw`, `github_team://7`, `admin`, `c-abc12:p-xyz34`).
    pub id: String,
    /// Its display name, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// A user's login name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Where it lives, for a project: its cluster's display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within: Option<String>,
    /// The workflow input it was given in (`user`, `role`, `project`), when it came from one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
}

impl NamedTarget {
    /// A target of `kind` known only by its id.
    pub fn new(kind: NamedKind, id: impl Into<String>) -> Self {
        Self {
            kind,
            id: id.into(),
            display_name: None,
            username: None,
            within: None,
            input: None,
        }
    }
}

/// A user whose name collides with a target's once case and look-alike characters are folded (`Alice` and
/// `аlice` with a Cyrillic `а`): the approver may be looking at the wrong person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LookAlike {
    /// The target's id.
    pub target: String,
    /// Which of the target's names collides: `display name` or `username`.
    pub field: String,
    /// The target's name that collides.
    pub name: String,
    /// The other user's id.
    pub other_id: String,
    /// The other user's name it collides with.
    pub other_name: String,
}

/// The names pinned with a request: one entry per object it acts on, and the look-alikes found among users.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinnedNames {
    /// The objects, in the order the plan names them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<NamedTarget>,
    /// Users whose names a target's name could be mistaken for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub look_alikes: Vec<LookAlike>,
}

impl PinnedNames {
    /// Whether nothing was pinned (requests filed before names were pinned, and workflows that name nothing).
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty() && self.look_alikes.is_empty()
    }

    /// The first target of `kind`.
    pub fn first(&self, kind: NamedKind) -> Option<&NamedTarget> {
        self.targets.iter().find(|t| t.kind == kind)
    }

    /// Every target of `kind`.
    pub fn of(&self, kind: NamedKind) -> impl Iterator<Item = &NamedTarget> {
        self.targets.iter().filter(move |t| t.kind == kind)
    }

    /// The target with this id, if pinned.
    pub fn by_id(&self, id: &str) -> Option<&NamedTarget> {
        self.targets.iter().find(|t| t.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_names_serialize_to_nothing_and_old_json_loads() {
        assert_eq!(
            serde_json::to_value(PinnedNames::default()).unwrap(),
            serde_json::json!({})
        );
        let back: PinnedNames = serde_json::from_value(serde_json::json!({})).unwrap();
        assert!(back.is_empty());
        let mut t = NamedTarget::new(NamedKind::User, "u-1");
        t.username = Some("alice".into());
        let names = PinnedNames {
            targets: vec![t],
            look_alikes: Vec::new(),
        };
        let json = serde_json::to_value(&names).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"targets": [{"kind": "user", "id": "u-1", "username": "alice"}]})
        );
        assert_eq!(serde_json::from_value::<PinnedNames>(json).unwrap(), names);
    }
}
