//! Names people type, resolved to what they mean on the server now: a user by id or username (with a hint when a
//! name matched nothing), a global role by name (listing the roles there are when it does not exist). Above the
//! executor and the lists, below the workflows that pin their inputs with these.

use futures::TryStreamExt;
use rancher_api::requests::{RkGlobalrolesGet, RkUsersGet, V3GlobalrolesGet, V3UsersGet, V3UsersList};

use crate::error::{Error, Result};
use crate::exec::{Exec, ResolvedUser};
use crate::listing::{ListKind, Listed};

impl Exec<'_> {
    /// Resolves a user given by id or username. Something shaped like a user id (`u-…`, `user-…`) is looked up
    /// by id only, never as a username, so a pinned id can never land on another account; a username must match
    /// exactly (the server's filter is not trusted to).
    pub async fn resolve_user(&self, user: &str) -> Result<ResolvedUser> {
        let looks_like_id = (user.starts_with("u-") || user.starts_with("user-"))
            && user.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if looks_like_id {
            let client = &self.session.client;
            let found = if self.rk_users() {
                client.users().get(RkUsersGet::new(user)).await.map(|u| u.username)
            } else {
                client.v3().users().get(V3UsersGet::new(user)).await.map(|u| u.username)
            };
            return match found {
                Ok(username) => Ok(ResolvedUser { id: user.to_string(), username: username.unwrap_or_default() }),
                Err(e) if e.is_not_found() => Err(Error::NotFound(format!("user id `{user}` does not exist (it may have been deleted); `rancherctl run list-users` shows the users"))),
                Err(e) => Err(e.into()),
            };
        }
        let found = self
            .session
            .client
            .v3()
            .users()
            .list_page(V3UsersList::new().username(user))
            .await?;
        let exact = found
            .data
            .into_iter()
            .find(|u| u.username.as_deref() == Some(user))
            .and_then(|u| u.id);
        match exact {
            Some(id) => Ok(ResolvedUser {
                id,
                username: user.to_string(),
            }),
            None => {
                let hint = self.user_hint(user).await.unwrap_or_default();
                Err(Error::NotFound(format!("user `{user}` does not exist (neither a user id nor a username){hint}; `rancherctl run list-users` shows them")))
            }
        }
    }

    /// For a user name that matched nothing exactly: the users it may have meant (a username in another case, a
    /// display name), as "; `Bob Example` is the display name of bob (u-pgn2v): use user=bob". Only on this error
    /// path, so the whole user list is read only when a person mistyped.
    async fn user_hint(&self, user: &str) -> Result<String> {
        use futures::StreamExt as _;
        let wanted = user.trim().to_lowercase();
        let mut hits: Vec<(String, String, String)> = Vec::new();
        let mut users = self.user_items(self.rk_users());
        while let Some(u) = users.next().await {
            let (id, username, display) = match u? {
                Listed::User(u) => (
                    u.metadata.and_then(|m| m.name).unwrap_or_default(),
                    u.username.unwrap_or_default(),
                    u.display_name.unwrap_or_default(),
                ),
                Listed::V3User(u) => (
                    u.id.unwrap_or_default(),
                    u.username.unwrap_or_default(),
                    u.name.unwrap_or_default(),
                ),
                _ => continue,
            };
            if !username.is_empty() && (username.to_lowercase() == wanted || display.to_lowercase() == wanted) {
                let how = if display.to_lowercase() == wanted {
                    "the display name"
                } else {
                    "the username, in another case,"
                };
                hits.push((id, username, how.to_string()));
                if hits.len() > 3 {
                    break;
                }
            }
        }
        Ok(match hits.as_slice() {
            [] => String::new(),
            [(id, username, how)] => format!("; `{user}` is {how} of {username} ({id}): use user={username}"),
            many => format!(
                "; `{user}` is the name of several users: {}; use one username",
                many.iter()
                    .map(|(id, u, _)| format!("{u} ({id})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })
    }

    /// Checks that a global role exists.
    pub async fn resolve_role(&self, role: &str) -> Result<String> {
        let client = &self.session.client;
        let found = if self.rk_mgmt() {
            client.global_roles().get(RkGlobalrolesGet::new(role)).await.map(drop)
        } else {
            client
                .v3()
                .globalroles()
                .get(V3GlobalrolesGet::new(role))
                .await
                .map(drop)
        };
        match found {
            Ok(()) => Ok(role.to_string()),
            Err(e) if e.is_not_found() => {
                let roles = self.stream(ListKind::GlobalRoles, true).await?;
                let mut names: Vec<String> = roles
                    .map_ok(|r| r.row(&Default::default()).swap_remove(0))
                    .try_collect()
                    .await?;
                names.sort();
                Err(Error::NotFound(format!(
                    "global role `{role}` does not exist; existing roles: {}",
                    names.join(", ")
                )))
            }
            Err(e) => Err(e.into()),
        }
    }
}
