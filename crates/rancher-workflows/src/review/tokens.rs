//! `token-report` and `cleanup-tokens`: every user's tokens, summarised while they stream past (memory grows with
//! the number of users, never with the number of tokens), and an approved, exactly-once cleanup of the tokens a
//! filter picks.
//!
//! Tokens are read a page at a time and each is looked at in place ([`TokenRef`], borrowed from the page): nothing
//! is allocated per token. The report keeps one small record per user (its id interned once, its counters); a
//! cleanup keeps the names it pins (at submit) or the pinned names it will delete (at execution), nothing else.

use std::collections::{BinaryHeap, HashMap, HashSet};

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use futures::{StreamExt, TryStreamExt};
use rancher_api::requests::{RkMgmttokensDelete, RkMgmttokensList, RkTokensDelete, RkTokensList};
use rancher_api::types::{MgmtToken, Token};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{number, refused, refused_gated, require_rk, time};
use crate::catalog::{DefaultApproval, InputKind, InputSpec, WorkflowDef};
use crate::error::{Error, Result};
use crate::exec::{Exec, Table};
use crate::progress::{Progress, Silent};
use crate::session::Session;
use crate::workflow::{Inputs, Pinned, Report, TypedWorkflow};

/// Page size for the token lists: large pages keep a 155,000-token report to a few hundred round trips.
const PAGE: i64 = 2000;
/// Deletes in flight at once.
const CONCURRENCY: usize = 8;
/// Attempts per delete (the client already repeats a DELETE whose answer was lost; this covers refusals such as
/// 429 and 5xx that outlast its retries).
const ATTEMPTS: u32 = 3;
/// How many pinned names approvers see as a sample.
const SAMPLE: usize = 20;

/// What a token is for, from Rancher's kind label (`authn.management.cattle.io/kind`: `session`, `kubeconfig`,
/// empty for an API key; rancher/rancher pkg/auth/tokens/manager.go) and `isDerived`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TokenKind {
    /// A login session (not derived).
    Session,
    /// An API key made by a user.
    ApiKey,
    /// A token made for a kubeconfig.
    Kubeconfig,
}

impl TokenKind {
    fn parse(s: &str) -> Option<TokenKind> {
        match s {
            "session" | "login" => Some(TokenKind::Session),
            "api-key" | "apikey" | "api" | "derived" => Some(TokenKind::ApiKey),
            "kubeconfig" => Some(TokenKind::Kubeconfig),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            TokenKind::Session => "session",
            TokenKind::ApiKey => "api-key",
            TokenKind::Kubeconfig => "kubeconfig",
        }
    }
}

/// One token, whichever API it came from, reduced to what the report and the cleanup need.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenFacts {
    /// Name; ext tokens as `ext/<name>` so the two APIs never collide.
    pub name: String,
    /// Owner's user id.
    pub user: String,
    /// Owner's login name, when the token says.
    pub login: String,
    /// Session, API key or kubeconfig token.
    pub kind: TokenKind,
    /// Expiry, `None` when it never expires.
    pub expires_at: Option<DateTime<Utc>>,
    /// Whether the server itself says the token is expired (ext tokens' `status.expired`, which Rancher works out
    /// on its own clock when it answers; the `expired` field of management tokens), `None` when it does not say.
    pub server_says_expired: Option<bool>,
    /// Scoped to this cluster (empty: all clusters).
    pub cluster: String,
    /// Last authenticated use, where the server records it.
    pub last_used: Option<DateTime<Utc>>,
    /// Creation time.
    pub created: Option<DateTime<Utc>>,
}

impl TokenFacts {
    /// From a `management.cattle.io/v3` Token.
    pub fn from_mgmt(t: &MgmtToken) -> TokenFacts {
        TokenRef::mgmt(t).to_owned()
    }

    /// From an `ext.cattle.io/v1` Token (Rancher 2.12+; its spec names the owner, its status the times).
    pub fn from_ext(t: &Token) -> TokenFacts {
        TokenRef::ext(t).to_owned()
    }

    /// Past its expiry but still stored, judged by the server: its own flag, or the expiry against `server_now`,
    /// the server's clock (see [`server_clock`]), never this host's.
    pub fn expired(&self, server_now: DateTime<Utc>) -> bool {
        self.server_says_expired == Some(true) || self.expires_at.is_some_and(|e| e <= server_now)
    }

    /// Not used for more than `days` (a token never used counts from its creation).
    pub fn unused_for(&self, days: i64, now: DateTime<Utc>) -> bool {
        let since = self.last_used.or(self.created);
        since.is_some_and(|t| now - t > Duration::days(days))
    }

    /// The same token, borrowed.
    #[cfg(test)]
    fn as_ref(&self) -> TokenRef<'_> {
        let (ext, name) = match self.name.strip_prefix("ext/") {
            Some(n) => (true, n),
            None => (false, self.name.as_str()),
        };
        TokenRef {
            name,
            ext,
            user: &self.user,
            login: &self.login,
            kind: self.kind,
            expires_at: self.expires_at,
            server_says_expired: self.server_says_expired,
            cluster: &self.cluster,
            last_used: self.last_used,
            created: self.created,
        }
    }
}

/// One token as it sits in the page it came in: [`TokenFacts`] without the copies. The ext API's names are
/// prefixed (`ext/`) only when one is kept.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct TokenRef<'a> {
    /// Name as the API has it (no `ext/` prefix).
    pub name: &'a str,
    /// From the `ext.cattle.io` API.
    pub ext: bool,
    pub user: &'a str,
    pub login: &'a str,
    pub kind: TokenKind,
    pub expires_at: Option<DateTime<Utc>>,
    pub server_says_expired: Option<bool>,
    pub cluster: &'a str,
    pub last_used: Option<DateTime<Utc>>,
    pub created: Option<DateTime<Utc>>,
}

impl<'a> TokenRef<'a> {
    /// From a `management.cattle.io/v3` Token.
    fn mgmt(t: &'a MgmtToken) -> TokenRef<'a> {
        let meta = t.metadata.as_ref();
        let label = |k: &str| {
            meta.and_then(|m| m.labels.as_ref())
                .and_then(|l| l.get(k))
                .map(String::as_str)
        };
        let user = t
            .user_id
            .as_deref()
            .filter(|u| !u.is_empty())
            .or_else(|| label("authn.management.cattle.io/token-userId"))
            .unwrap_or_default();
        let kind = match label("authn.management.cattle.io/kind") {
            Some("kubeconfig") => TokenKind::Kubeconfig,
            Some("session") => TokenKind::Session,
            _ if t.is_derived == Some(false) => TokenKind::Session,
            _ => TokenKind::ApiKey,
        };
        let login = t
            .user_principal
            .as_ref()
            .and_then(|p| p.get("loginName"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        TokenRef {
            name: meta.and_then(|m| m.name.as_deref()).unwrap_or_default(),
            ext: false,
            user,
            login,
            kind,
            expires_at: if t.ttl.unwrap_or(0) > 0 {
                time(t.expires_at.as_deref())
            } else {
                None
            },
            server_says_expired: t.expired,
            cluster: t.cluster_name.as_deref().unwrap_or_default(),
            last_used: time(t.last_used_at.as_deref()),
            created: time(meta.and_then(|m| m.creation_timestamp.as_deref())),
        }
    }

    /// From an `ext.cattle.io/v1` Token.
    fn ext(t: &'a Token) -> TokenRef<'a> {
        let meta = t.metadata.as_ref();
        let spec = t.spec.as_ref();
        let status = t.status.as_ref();
        let kind = match spec.and_then(|s| s.kind.as_deref()) {
            Some("session") => TokenKind::Session,
            Some("kubeconfig") => TokenKind::Kubeconfig,
            _ => TokenKind::ApiKey,
        };
        TokenRef {
            name: meta.and_then(|m| m.name.as_deref()).unwrap_or_default(),
            ext: true,
            user: spec.and_then(|s| s.user_id.as_deref()).unwrap_or_default(),
            login: spec
                .and_then(|s| s.user_principal.as_ref())
                .and_then(|p| p.login_name.as_deref())
                .unwrap_or_default(),
            kind,
            expires_at: if spec.and_then(|s| s.ttl).unwrap_or(0) > 0 {
                time(status.and_then(|s| s.expires_at.as_deref()))
            } else {
                None
            },
            server_says_expired: status.and_then(|s| s.expired),
            cluster: spec.and_then(|s| s.cluster_name.as_deref()).unwrap_or_default(),
            last_used: time(status.and_then(|s| s.last_used_at.as_deref())),
            created: time(meta.and_then(|m| m.creation_timestamp.as_deref())),
        }
    }

    /// From a page of v3 tokens as the workflows decode it (see [`lean`]); the same facts as [`TokenRef::mgmt`].
    fn lean_mgmt(t: &'a lean::Mgmt) -> TokenRef<'a> {
        let labels = t.metadata.labels.as_ref();
        let user = t
            .user_id
            .as_deref()
            .filter(|u| !u.is_empty())
            .or_else(|| labels.and_then(|l| l.user_id.as_deref()))
            .unwrap_or_default();
        let kind = match labels.and_then(|l| l.kind.as_deref()) {
            Some("kubeconfig") => TokenKind::Kubeconfig,
            Some("session") => TokenKind::Session,
            _ if t.is_derived == Some(false) => TokenKind::Session,
            _ => TokenKind::ApiKey,
        };
        TokenRef {
            name: t.metadata.name.as_deref().unwrap_or_default(),
            ext: false,
            user,
            login: t
                .user_principal
                .as_ref()
                .and_then(|p| p.login_name.as_deref())
                .unwrap_or_default(),
            kind,
            expires_at: if t.ttl.unwrap_or(0) > 0 {
                time(t.expires_at.as_deref())
            } else {
                None
            },
            server_says_expired: t.expired,
            cluster: t.cluster_name.as_deref().unwrap_or_default(),
            last_used: time(t.last_used_at.as_deref()),
            created: time(t.metadata.creation_timestamp.as_deref()),
        }
    }

    /// From a page of ext tokens as the workflows decode it; the same facts as [`TokenRef::ext`].
    fn lean_ext(t: &'a lean::Ext) -> TokenRef<'a> {
        let kind = match t.spec.kind.as_deref() {
            Some("session") => TokenKind::Session,
            Some("kubeconfig") => TokenKind::Kubeconfig,
            _ => TokenKind::ApiKey,
        };
        TokenRef {
            name: t.metadata.name.as_deref().unwrap_or_default(),
            ext: true,
            user: t.spec.user_id.as_deref().unwrap_or_default(),
            login: t
                .spec
                .user_principal
                .as_ref()
                .and_then(|p| p.login_name.as_deref())
                .unwrap_or_default(),
            kind,
            expires_at: if t.spec.ttl.unwrap_or(0) > 0 {
                time(t.status.expires_at.as_deref())
            } else {
                None
            },
            server_says_expired: t.status.expired,
            cluster: t.spec.cluster_name.as_deref().unwrap_or_default(),
            last_used: time(t.status.last_used_at.as_deref()),
            created: time(t.metadata.creation_timestamp.as_deref()),
        }
    }

    /// The name the workflows use: `ext/<name>` for an ext token.
    fn full_name(&self) -> String {
        if self.ext {
            format!("ext/{}", self.name)
        } else {
            self.name.to_string()
        }
    }

    /// Whether `full` (as [`TokenRef::full_name`] writes it) names this token, without building the name.
    fn is_named(&self, full: &str) -> bool {
        if self.ext {
            full.strip_prefix("ext/") == Some(self.name)
        } else {
            full == self.name
        }
    }

    /// Where this token is among sorted names (see [`slice::binary_search`]).
    fn find_in(&self, sorted: &[Box<str>]) -> std::result::Result<usize, usize> {
        if self.ext {
            let full = self.full_name();
            sorted.binary_search_by(|p| p.as_ref().cmp(full.as_str()))
        } else {
            sorted.binary_search_by(|p| p.as_ref().cmp(self.name))
        }
    }

    fn to_owned(self) -> TokenFacts {
        TokenFacts {
            name: self.full_name(),
            user: self.user.to_string(),
            login: self.login.to_string(),
            kind: self.kind,
            expires_at: self.expires_at,
            server_says_expired: self.server_says_expired,
            cluster: self.cluster.to_string(),
            last_used: self.last_used,
            created: self.created,
        }
    }

    /// See [`TokenFacts::expired`].
    fn expired(&self, server_now: DateTime<Utc>) -> bool {
        self.server_says_expired == Some(true) || self.expires_at.is_some_and(|e| e <= server_now)
    }

    /// See [`TokenFacts::unused_for`].
    fn unused_for(&self, days: i64, now: DateTime<Utc>) -> bool {
        let since = self.last_used.or(self.created);
        since.is_some_and(|t| now - t > Duration::days(days))
    }
}

/// Does this server record when a token was last used? Rancher writes `lastUsedAt` on authenticated use from 2.10
/// (rancher/rancher pkg/auth/requests/authenticate.go `Authenticate`); before that the field does not exist
/// (pkg/apis/management.cattle.io/v3/authn_types.go), so "unused" can only be counted from creation.
fn records_last_use(session: &Session) -> bool {
    session.version.at_least(2, 10)
}

/// Streams every token an admin can list: `management.cattle.io/v3` tokens on 2.8+, and `ext.cattle.io/v1`
/// tokens on 2.12+, handing each to `each` without keeping it.
/// Every token, in pages, counted as read on `progress` (stage `reading tokens`).
pub(crate) async fn each_token(
    session: &Session,
    progress: &dyn Progress,
    mut each: impl FnMut(TokenFacts),
) -> Result<()> {
    each_token_ref(session, progress, |t| each(t.to_owned())).await
}

/// [`each_token`] without copying anything: each token is seen where it lies in its page.
async fn each_token_ref(session: &Session, progress: &dyn Progress, mut each: impl FnMut(TokenRef<'_>)) -> Result<()> {
    progress.stage("reading tokens", None);
    let client = &session.client;
    let mut mgmt = client.stream(lean::Lean::<_, lean::Mgmt>::new(RkMgmttokensList::new().limit(PAGE)));
    while let Some(t) = mgmt
        .try_next()
        .await
        .map_err(|e| refused_gated("tokens.management.cattle.io", e))?
    {
        if t.metadata.deletion_timestamp.is_some() {
            continue;
        }
        progress.advance(1);
        each(TokenRef::lean_mgmt(&t));
    }
    if session.version.at_least(2, 12) {
        let mut ext = client.stream(lean::Lean::<_, lean::Ext>::new(RkTokensList::new().limit(PAGE)));
        while let Some(t) = ext.try_next().await.map_err(|e| refused("tokens.ext.cattle.io", e))? {
            progress.advance(1);
            each(TokenRef::lean_ext(&t));
        }
    }
    Ok(())
}

/// A whole-number input given as text (`unused-days=90`), checked as [`super::number`] checks it.
fn whole(id: &str, name: &str, given: Option<&str>) -> Result<Option<i64>> {
    match given {
        None => Ok(None),
        Some(s) => number(id, &json!({ name: s }), name),
    }
}

static TOKEN_REPORT: WorkflowDef = WorkflowDef {
    id: "token-report",
    title: "Token report",
    description: "Every user's tokens summarised: totals (tokens, users, expired but still stored, never expiring, cluster-scoped, sessions, API keys, kubeconfig tokens, unused for more than N days) and one row per user, most tokens first. Streams: memory does not grow with the number of tokens. Needs an admin.",
    inputs: &[
        InputSpec { name: "unused-days", kind: InputKind::String, required: false, description: "count tokens not used for more than this many days (default 90)" },
        InputSpec { name: "top", kind: InputKind::String, required: false, description: "only the N users with the most tokens in the table and `users` (default: all)" },
    ],
    output: "{totals, users}: totals over every token, and per user the counts, most tokens first",
    default_approval: DefaultApproval::None,
    writes: false,
};

/// The inputs of `token-report`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct TokenReportInputs {
    /// Count tokens not used for more than this many days (default 90).
    #[serde(default, rename = "unused-days")]
    pub unused_days: Option<String>,
    /// Only the N users with the most tokens.
    #[serde(default)]
    pub top: Option<String>,
}

impl TokenReportInputs {
    /// `(unused-days, top)`, checked.
    fn numbers(&self) -> Result<(i64, Option<usize>)> {
        let id = TOKEN_REPORT.id;
        let unused = whole(id, "unused-days", self.unused_days.as_deref())?.unwrap_or(90);
        let top = whole(id, "top", self.top.as_deref())?.map(|n| n as usize);
        Ok((unused, top))
    }
}

/// Counts for one user or for all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Tokens.
    pub tokens: u64,
    /// Past their expiry but still stored.
    pub expired: u64,
    /// With no expiry.
    pub never_expiring: u64,
    /// Scoped to one cluster.
    pub cluster_scoped: u64,
    /// Login sessions.
    pub sessions: u64,
    /// Derived tokens: API keys and kubeconfig tokens.
    pub derived: u64,
    /// Kubeconfig tokens.
    pub kubeconfig: u64,
    /// Not used for more than the report's `unused-days`.
    pub unused: u64,
}

impl Counts {
    fn add(&mut self, t: &TokenRef<'_>, now: DateTime<Utc>, unused_days: i64) {
        self.tokens += 1;
        self.expired += t.expired(now) as u64;
        self.never_expiring += t.expires_at.is_none() as u64;
        self.cluster_scoped += !t.cluster.is_empty() as u64;
        self.sessions += (t.kind == TokenKind::Session) as u64;
        self.derived += (t.kind != TokenKind::Session) as u64;
        self.kubeconfig += (t.kind == TokenKind::Kubeconfig) as u64;
        self.unused += t.unused_for(unused_days, now) as u64;
    }
}

/// Per-user counters, each user id interned once: what the report keeps while the tokens stream past.
#[derive(Debug, Default)]
struct PerUser {
    index: HashMap<Box<str>, u32>,
    /// By interned index: a login name (the first a token gave) and the counters.
    users: Vec<(Box<str>, Counts)>,
}

impl PerUser {
    fn add(&mut self, t: &TokenRef<'_>, now: DateTime<Utc>, unused_days: i64) {
        let i = match self.index.get(t.user) {
            Some(i) => *i as usize,
            None => {
                let i = self.users.len();
                self.index.insert(t.user.into(), i as u32);
                self.users.push((Box::from(""), Counts::default()));
                i
            }
        };
        let (login, counts) = &mut self.users[i];
        if login.is_empty() && !t.login.is_empty() {
            *login = t.login.into();
        }
        counts.add(t, now, unused_days);
    }

    /// `(user id, login, counts)`, most tokens first (then by id).
    fn ranked(self) -> Vec<(Box<str>, Box<str>, Counts)> {
        let mut users: Vec<Option<(Box<str>, Counts)>> = self.users.into_iter().map(Some).collect();
        let mut out: Vec<(Box<str>, Box<str>, Counts)> = self
            .index
            .into_iter()
            .filter_map(|(id, i)| users[i as usize].take().map(|(login, c)| (id, login, c)))
            .collect();
        out.sort_by(|a, b| b.2.tokens.cmp(&a.2.tokens).then_with(|| a.0.cmp(&b.0)));
        out
    }
}

/// Implements [`Workflow`](crate::workflow::Workflow) for `$outer` through [`Typed`](crate::workflow::Typed) over
/// the typed workflow `$typed` makes of it, so the workflow keeps its public name and `Workflow` contract where it is
/// registered and used.
macro_rules! via_typed {
    ($outer:ty, $typed:expr) => {
        #[async_trait]
        impl crate::workflow::Workflow for $outer {
            fn def(&self) -> &'static WorkflowDef {
                TypedWorkflow::def(&($typed)(self))
            }
            fn check(&self, inputs: &Inputs) -> Result<()> {
                crate::workflow::Workflow::check(&crate::workflow::Typed(($typed)(self)), inputs)
            }
            async fn prepare(&self, session: &Session, inputs: Inputs) -> Result<Pinned> {
                crate::workflow::Workflow::prepare(&crate::workflow::Typed(($typed)(self)), session, inputs).await
            }
            async fn run(&self, exec: &mut Exec<'_>, inputs: &Inputs) -> Result<Report> {
                crate::workflow::Workflow::run(&crate::workflow::Typed(($typed)(self)), exec, inputs).await
            }
            async fn applied(&self, session: &Session, inputs: &Inputs) -> Result<Option<bool>> {
                crate::workflow::Workflow::applied(&crate::workflow::Typed(($typed)(self)), session, inputs).await
            }
            fn secret_fields(&self, inputs: &Inputs) -> Vec<String> {
                crate::workflow::Workflow::secret_fields(&crate::workflow::Typed(($typed)(self)), inputs)
            }
            fn reads_only(&self, inputs: &Inputs) -> bool {
                crate::workflow::Workflow::reads_only(&crate::workflow::Typed(($typed)(self)), inputs)
            }
            fn report_document(&self) -> bool {
                TypedWorkflow::report_document(&($typed)(self))
            }
        }
    };
}

/// One user of the report's `users`: the counters (in [`Counts`]' order), then `user` and `login`. Built with
/// its exact size (a report of 14,650 users holds this many objects until it is printed).
fn user_entry(id: Box<str>, login: Box<str>, c: &Counts) -> Value {
    let mut m = serde_json::Map::with_capacity(10);
    for (k, n) in [
        ("tokens", c.tokens),
        ("expired", c.expired),
        ("never_expiring", c.never_expiring),
        ("cluster_scoped", c.cluster_scoped),
        ("sessions", c.sessions),
        ("derived", c.derived),
        ("kubeconfig", c.kubeconfig),
        ("unused", c.unused),
    ] {
        m.insert(k.into(), Value::from(n));
    }
    m.insert("user".into(), Value::String(id.into()));
    m.insert("login".into(), Value::String(login.into()));
    Value::Object(m)
}

/// The `token-report` workflow.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokenReport;

/// `token-report` over its input struct; [`TokenReport`] runs it through [`Typed`](crate::workflow::Typed).
#[derive(Debug, Clone, Copy)]
struct TokenReportTyped;

via_typed!(TokenReport, |_: &TokenReport| TokenReportTyped);

#[async_trait]
impl TypedWorkflow for TokenReportTyped {
    type Inputs = TokenReportInputs;

    fn def(&self) -> &'static WorkflowDef {
        &TOKEN_REPORT
    }

    fn check(&self, inputs: &TokenReportInputs) -> Result<()> {
        inputs.numbers().map(|_| ())
    }

    fn report_document(&self) -> bool {
        // `-o json` prints `{"totals":..,"users":..}` itself.
        true
    }

    async fn run(&self, exec: &mut Exec<'_>, inputs: TokenReportInputs, _: &Inputs) -> Result<Report> {
        let session = exec.session();
        require_rk(TOKEN_REPORT.id, session)?;
        let (unused_days, top) = inputs.numbers()?;
        // Expired and unused as Rancher's clock sees them.
        let now = server_clock(session, Utc::now)
            .await?
            .map(|(server, _)| server)
            .unwrap_or_else(Utc::now);
        let mut totals = Counts::default();
        let mut per_user = PerUser::default();
        each_token_ref(session, exec.progress().as_ref(), |t| {
            totals.add(&t, now, unused_days);
            per_user.add(&t, now, unused_days);
        })
        .await?;
        let users_total = per_user.users.len();
        let mut users = per_user.ranked();
        if let Some(n) = top {
            users.truncate(n);
        }
        let mut rows = Vec::with_capacity(users.len());
        let mut users_json = Vec::with_capacity(users.len());
        for (id, login, c) in users {
            rows.push(vec![
                id.to_string(),
                login.to_string(),
                c.tokens.to_string(),
                c.expired.to_string(),
                c.never_expiring.to_string(),
                c.cluster_scoped.to_string(),
                c.sessions.to_string(),
                c.derived.to_string(),
                c.kubeconfig.to_string(),
                c.unused.to_string(),
            ]);
            users_json.push(user_entry(id, login, &c));
        }
        let table = Table {
            columns: [
                "USER",
                "LOGIN",
                "TOKENS",
                "EXPIRED",
                "NEVER EXPIRE",
                "CLUSTER-SCOPED",
                "SESSIONS",
                "DERIVED",
                "KUBECONFIG",
                format!("UNUSED >{unused_days}D").as_str(),
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            rows,
        };
        let mut totals_json = serde_json::to_value(&totals).unwrap_or(Value::Null);
        totals_json["users"] = json!(users_total);
        totals_json["unused_days"] = json!(unused_days);
        let recorded = records_last_use(session);
        totals_json["last_use_recorded"] = json!(recorded);
        let mut summary = format!(
            "{} tokens of {} users: {} expired but still stored, {} never expire, {} cluster-scoped, {} not used for more than {} days",
            totals.tokens, users_total, totals.expired, totals.never_expiring, totals.cluster_scoped, totals.unused, unused_days
        );
        if !recorded {
            summary.push_str(&format!(
                " (Rancher {} does not record token use, which 2.10 added: these counts go by creation time, so a token in daily use can be among them)",
                session.version
            ));
        }
        Ok(Report::new(summary, json!({"totals": totals_json, "users": users_json})).with_table(table))
    }
}

static CLEANUP_TOKENS: WorkflowDef = WorkflowDef {
    id: "cleanup-tokens",
    title: "Clean up tokens",
    description: "Deletes the tokens a filter picks (all given conditions must hold). At submit the exact token names are pinned and approvers see the count and a sample; at execution only pinned tokens that still match are deleted, never the caller's own token, a few at a time with retries. Exactly once across crashes. A dry run lists what would go.",
    inputs: &[
        InputSpec { name: "filter", kind: InputKind::String, required: false, description: "`expired`: tokens past their expiry that Rancher still stores" },
        InputSpec { name: "unused-days", kind: InputKind::String, required: false, description: "tokens not used for more than this many days (never used: counted from creation)" },
        InputSpec { name: "user", kind: InputKind::String, required: false, description: "only this user's tokens (user id)" },
        InputSpec { name: "kind", kind: InputKind::String, required: false, description: "only `session`, `api-key` or `kubeconfig` tokens" },
        InputSpec { name: "pinned", kind: InputKind::Json, required: false, description: "set at submit: the exact token names to delete (not given by people)" },
        InputSpec { name: "shown", kind: InputKind::Json, required: false, description: "set at submit: the count and a sample, as approvers see them (not given by people)" },
    ],
    output: "counts of deleted, already gone, no longer matching and failed tokens",
    default_approval: DefaultApproval::Installer,
    writes: true,
};

/// The inputs of `cleanup-tokens`, as people give them and approval requests store them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct CleanupInputs {
    /// `expired`.
    #[serde(default)]
    pub filter: Option<String>,
    /// Not used for more than this many days.
    #[serde(default, rename = "unused-days")]
    pub unused_days: Option<String>,
    /// Only this user's tokens (user id).
    #[serde(default)]
    pub user: Option<String>,
    /// Only tokens of this kind.
    #[serde(default)]
    pub kind: Option<String>,
    /// Set at submit: the exact names to delete (see [`PinnedNames`]).
    #[serde(default)]
    pub pinned: Option<PinnedNames>,
}

/// The token names a cleanup pinned at submit, sorted and without repeats, for lookups while the tokens stream
/// past. `None` inside when the stored `pinned` is not a list (such a request never deletes anything); entries
/// that are not text are left out, as they always were.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PinnedNames(Option<Vec<Box<str>>>);

impl PinnedNames {
    fn names(&self) -> Option<&[Box<str>]> {
        self.0.as_deref()
    }
}

impl<'de> Deserialize<'de> for PinnedNames {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Names;
        impl<'de> serde::de::Visitor<'de> for Names {
            type Value = PinnedNames;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a list of token names")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<PinnedNames, A::Error> {
                let mut names: Vec<Box<str>> = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 20));
                while let Some(v) = seq.next_element::<Value>()? {
                    if let Value::String(s) = v {
                        names.push(s.into_boxed_str());
                    }
                }
                names.sort_unstable();
                names.dedup();
                Ok(PinnedNames(Some(names)))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> std::result::Result<PinnedNames, A::Error> {
                while map
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(PinnedNames(None))
            }
            fn visit_str<E>(self, _: &str) -> std::result::Result<PinnedNames, E> {
                Ok(PinnedNames(None))
            }
            fn visit_bool<E>(self, _: bool) -> std::result::Result<PinnedNames, E> {
                Ok(PinnedNames(None))
            }
            fn visit_i64<E>(self, _: i64) -> std::result::Result<PinnedNames, E> {
                Ok(PinnedNames(None))
            }
            fn visit_u64<E>(self, _: u64) -> std::result::Result<PinnedNames, E> {
                Ok(PinnedNames(None))
            }
            fn visit_f64<E>(self, _: f64) -> std::result::Result<PinnedNames, E> {
                Ok(PinnedNames(None))
            }
            fn visit_unit<E>(self) -> std::result::Result<PinnedNames, E> {
                Ok(PinnedNames(None))
            }
        }
        d.deserialize_any(Names)
    }
}

/// A cleanup filter: every given condition must hold.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Filter {
    expired: bool,
    unused_days: Option<i64>,
    user: Option<String>,
    kind: Option<TokenKind>,
}

impl Filter {
    fn from_typed(inputs: &CleanupInputs) -> Result<Filter> {
        let id = CLEANUP_TOKENS.id;
        let expired = match inputs.filter.as_deref() {
            None => false,
            Some("expired") => true,
            Some(other) => {
                return Err(Error::Input {
                    workflow: id.into(),
                    input: "filter".into(),
                    message: format!("`{other}` is not a filter; use filter=expired (or unused-days=N, user=, kind=)"),
                })
            }
        };
        let kind = match inputs.kind.as_deref() {
            None => None,
            Some(k) => Some(TokenKind::parse(k).ok_or_else(|| Error::Input {
                workflow: id.into(),
                input: "kind".into(),
                message: format!("`{k}` is not a token kind; use session, api-key or kubeconfig"),
            })?),
        };
        let f = Filter {
            expired,
            unused_days: whole(id, "unused-days", inputs.unused_days.as_deref())?,
            user: inputs.user.clone(),
            kind,
        };
        if !f.expired && f.unused_days.is_none() && f.user.is_none() && f.kind.is_none() {
            return Err(Error::Input {
                workflow: id.into(),
                input: "filter".into(),
                message: "say which tokens to delete: filter=expired, unused-days=N, user=<user id> or kind=session|api-key|kubeconfig (conditions combine)".into(),
            });
        }
        Ok(f)
    }

    fn matches(&self, t: &TokenRef<'_>, now: DateTime<Utc>) -> bool {
        (!self.expired || t.expired(now))
            && self.unused_days.is_none_or(|d| t.unused_for(d, now))
            && self.user.as_deref().is_none_or(|u| t.user == u)
            && self.kind.is_none_or(|k| t.kind == k)
    }
}

/// The caller's own token, which a cleanup never deletes (it would cut the run off mid-way).
fn own_token(session: &Session) -> Option<String> {
    let name = session.client.token_name()?;
    Some(name)
}

/// Whether `t` is the caller's own token (`own`: its name as the client holds it, with or without `ext/`).
fn is_own(own: Option<&str>, t: &TokenRef<'_>) -> bool {
    own.is_some_and(|o| t.is_named(o) || (t.ext && t.name == o))
}

/// This host's clock, replaceable so a test can run the cleanup on a host whose clock is off.
pub type LocalClock = fn() -> DateTime<Utc>;

/// The server's clock and how far this host's (`local`) is from it: the `Date` header of a one-item token list.
/// `None` when the server sent no usable `Date`.
pub async fn server_clock(session: &Session, local: LocalClock) -> Result<Option<(DateTime<Utc>, Duration)>> {
    let (_, date) = session
        .client
        .send_dated(&RkMgmttokensList::new().limit(1))
        .await
        .map_err(|e| refused_gated("tokens.management.cattle.io", e))?;
    Ok(date.map(|d| {
        let server = DateTime::<Utc>::from(d);
        (server, local() - server)
    }))
}

/// The time a filter judges by: the server's. `filter=expired` refuses to guess when the server gives no clock.
/// Answers it and a note for approvers when this host's clock is more than a minute off.
async fn judge_time(session: &Session, filter: &Filter, local: LocalClock) -> Result<(DateTime<Utc>, Option<String>)> {
    match server_clock(session, local).await? {
        Some((server, skew)) => {
            let note = (skew.num_seconds().abs() > 60).then(|| {
                let dir = if skew > Duration::zero() { "ahead of" } else { "behind" };
                format!("this host's clock is {} s {dir} Rancher's; expiry and age were judged by Rancher's clock", skew.num_seconds().abs())
            });
            Ok((server, note))
        }
        None if filter.expired => Err(Error::Refused(
            "cleanup-tokens filter=expired judges expiry by Rancher's clock, and Rancher's answer carried no Date header; \
             check what sits between this host and Rancher (a proxy stripping Date), or use unused-days=N"
                .into(),
        )),
        None => Ok((local(), None)),
    }
}

/// Every matching token but the caller's own, judged by the server's clock, handed to `each` where it lies.
async fn each_match(
    session: &Session,
    filter: &Filter,
    local: LocalClock,
    progress: &dyn Progress,
    mut each: impl FnMut(TokenRef<'_>),
) -> Result<Option<String>> {
    let (now, note) = judge_time(session, filter, local).await?;
    let own = own_token(session);
    each_token_ref(session, progress, |t| {
        if !is_own(own.as_deref(), &t) && filter.matches(&t, now) {
            each(t);
        }
    })
    .await?;
    Ok(note)
}

/// How approvers see one pinned token in the sample.
fn sample_entry(t: &TokenRef<'_>) -> Value {
    json!({"name": t.full_name(), "user": t.user, "login": t.login, "kind": t.kind.as_str(), "expires_at": t.expires_at.map(|e| e.to_rfc3339()), "last_used": t.last_used.map(|e| e.to_rfc3339())})
}

/// The pinned names of a stored request, or the refusal that says why a request without them never runs.
fn pinned_of(inputs: &CleanupInputs) -> Result<&[Box<str>]> {
    inputs.pinned.as_ref().and_then(PinnedNames::names).ok_or_else(|| {
        Error::Refused(
            "cleanup-tokens runs only the token names pinned at submit; this request has none. Submit it again".into(),
        )
    })
}

/// The `cleanup-tokens` workflow.
#[derive(Debug, Clone, Copy)]
pub struct CleanupTokens {
    local_clock: LocalClock,
}

impl Default for CleanupTokens {
    fn default() -> Self {
        CleanupTokens { local_clock: Utc::now }
    }
}

impl CleanupTokens {
    /// The workflow on a host whose clock reads `clock` (tests): it only says how far that is from Rancher's
    /// clock; expiry is judged by Rancher's.
    pub fn with_local_clock(clock: LocalClock) -> Self {
        CleanupTokens { local_clock: clock }
    }
}

/// `cleanup-tokens` over its input struct; [`CleanupTokens`] runs it through [`Typed`](crate::workflow::Typed).
#[derive(Debug, Clone, Copy)]
struct CleanupTyped {
    local_clock: LocalClock,
}

via_typed!(CleanupTokens, |c: &CleanupTokens| CleanupTyped {
    local_clock: c.local_clock
});

#[async_trait]
impl TypedWorkflow for CleanupTyped {
    type Inputs = CleanupInputs;

    fn def(&self) -> &'static WorkflowDef {
        &CLEANUP_TOKENS
    }

    fn check(&self, inputs: &CleanupInputs) -> Result<()> {
        Filter::from_typed(inputs).map(|_| ())
    }

    async fn prepare(&self, session: &Session, inputs: CleanupInputs, mut raw: Inputs) -> Result<Pinned> {
        require_rk(CLEANUP_TOKENS.id, session)?;
        let filter = Filter::from_typed(&inputs)?;
        if filter.unused_days.is_some() && !records_last_use(session) {
            return Err(Error::Refused(format!(
                "cleanup-tokens unused-days=N needs to know when tokens were last used, and Rancher {} does not record it (2.10 added lastUsedAt); going by creation time would delete keys in daily use. Use filter=expired, user= or kind= instead, or upgrade Rancher",
                session.version
            )));
        }
        // Kept while the tokens stream past: the names, the owners (bounded by the users) and the first few names
        // with what approvers see of them (a max-heap of the SAMPLE smallest).
        let mut names: Vec<Box<str>> = Vec::new();
        let mut users: HashSet<Box<str>> = HashSet::new();
        let mut sample: BinaryHeap<(Box<str>, SampleEntry)> = BinaryHeap::new();
        let note = each_match(session, &filter, self.local_clock, &Silent, |t| {
            let name: Box<str> = t.full_name().into();
            if !users.contains(t.user) {
                users.insert(t.user.into());
            }
            if sample.len() < SAMPLE || sample.peek().is_some_and(|(top, _)| name < *top) {
                sample.push((name.clone(), SampleEntry(sample_entry(&t))));
                if sample.len() > SAMPLE {
                    sample.pop();
                }
            }
            names.push(name);
        })
        .await?;
        if names.is_empty() {
            return Err(Error::NotFound(
                "no token matches this filter; nothing to approve (`rancherctl run token-report` shows what there is)"
                    .into(),
            ));
        }
        names.sort_unstable();
        let sample: Vec<Value> = sample.into_sorted_vec().into_iter().map(|(_, e)| e.0).collect();
        raw["shown"] = json!({"count": names.len(), "users": users.len(), "sample": sample});
        if let Some(n) = note {
            raw["shown"]["clock"] = json!(n);
        }
        raw["pinned"] = Value::Array(names.into_iter().map(|n| Value::String(n.into())).collect());
        // No targets: a cleanup only takes away, so an owner of some of the tokens (often an admin) may approve it.
        Ok(Pinned {
            inputs: raw,
            targets: Vec::new(),
        })
    }

    async fn run(&self, exec: &mut Exec<'_>, inputs: CleanupInputs, _: &Inputs) -> Result<Report> {
        let session = exec.session();
        require_rk(CLEANUP_TOKENS.id, session)?;
        let filter = Filter::from_typed(&inputs)?;
        let progress = exec.progress();
        if exec.is_dry_run() {
            let mut found: Vec<TokenFacts> = Vec::new();
            each_match(session, &filter, self.local_clock, progress.as_ref(), |t| {
                found.push(t.to_owned())
            })
            .await?;
            found.sort_by(|a, b| a.name.cmp(&b.name));
            let rows: Vec<Vec<String>> = found
                .iter()
                .map(|t| {
                    vec![
                        t.name.clone(),
                        t.user.clone(),
                        t.login.clone(),
                        t.kind.as_str().into(),
                        t.expires_at.map(|e| e.to_rfc3339()).unwrap_or_default(),
                        t.last_used.map(|e| e.to_rfc3339()).unwrap_or_default(),
                    ]
                })
                .collect();
            let names: Vec<&str> = found.iter().map(|t| t.name.as_str()).collect();
            let summary = format!("would delete {} tokens", names.len());
            return Ok(
                Report::new(summary, json!({"would_delete": names, "count": names.len()})).with_table(Table {
                    columns: ["NAME", "USER", "LOGIN", "KIND", "EXPIRES", "LAST USED"]
                        .map(String::from)
                        .to_vec(),
                    rows,
                }),
            );
        }
        // Only what approvers saw: the pinned names, each only while it still matches. While the tokens stream
        // past, a pinned one that still matches is marked (by its place among the sorted pinned names).
        let pinned = pinned_of(&inputs)?;
        let mut still = vec![false; pinned.len()];
        each_match(session, &filter, self.local_clock, progress.as_ref(), |t| {
            if let Ok(i) = t.find_in(pinned) {
                still[i] = true;
            }
        })
        .await?;
        let to_delete: Vec<&str> = pinned
            .iter()
            .zip(&still)
            .filter(|(_, s)| **s)
            .map(|(n, _)| n.as_ref())
            .collect();
        drop(still);
        let no_longer_matching = pinned.len() - to_delete.len();
        let client = session.client.clone();
        // Fenced a chunk at a time: before each chunk the execution's claim is confirmed, so an executor that was
        // paused and taken over stops within one chunk instead of going on deleting (a delete repeated by the new
        // executor finds the token gone, so nothing is counted twice either way). Outcomes are counted as they
        // come; only failures are kept, with their errors.
        let (mut deleted, mut gone) = (0usize, 0usize);
        let mut failed = Vec::new();
        progress.stage("deleting tokens", Some(to_delete.len() as u64));
        for chunk in to_delete.chunks(FENCE_EVERY) {
            exec.confirm_claim().await?;
            let names: Vec<String> = chunk.iter().map(|n| n.to_string()).collect();
            let mut done = futures::stream::iter(names.into_iter().map(|name| {
                let client = client.clone();
                async move {
                    let outcome = delete_one(&client, &name).await;
                    (name, outcome)
                }
            }))
            .buffer_unordered(CONCURRENCY);
            while let Some((name, outcome)) = done.next().await {
                progress.advance(1);
                match outcome {
                    Outcome::Deleted => deleted += 1,
                    Outcome::Gone => gone += 1,
                    Outcome::Failed(e) => failed.push(json!({"name": name, "error": e})),
                }
            }
        }
        // Pinned tokens that no longer match were either deleted already (a run before a crash) or changed since.
        let summary = format!(
            "deleted {deleted} tokens; {gone} already gone; {no_longer_matching} no longer there or no longer matching; {} failed",
            failed.len()
        );
        let result = json!({"deleted": deleted, "already_gone": gone, "no_longer_matching": no_longer_matching, "failed": failed.len(), "failures": failed, "pinned": pinned.len()});
        if !failed.is_empty() {
            tracing::warn!(failed = failed.len(), "some tokens could not be deleted");
        }
        Ok(Report::new(summary, result))
    }

    async fn applied(&self, session: &Session, inputs: CleanupInputs, _: &Inputs) -> Result<Option<bool>> {
        // Done when no pinned token that still matches is left on the server; otherwise the run continues with
        // exactly those (the ones deleted before the crash are gone and are not sent again).
        let Some(pinned) = inputs.pinned.as_ref().and_then(PinnedNames::names) else {
            return Ok(None);
        };
        let filter = Filter::from_typed(&inputs)?;
        let mut left = 0usize;
        each_match(session, &filter, self.local_clock, &Silent, |t| {
            left += t.find_in(pinned).is_ok() as usize;
        })
        .await?;
        Ok(Some(left == 0))
    }
}

/// A sample entry, ordered by nothing (the heap orders by name first; names are unique).
struct SampleEntry(Value);

impl PartialEq for SampleEntry {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for SampleEntry {}
impl PartialOrd for SampleEntry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for SampleEntry {
    fn cmp(&self, _: &Self) -> std::cmp::Ordering {
        std::cmp::Ordering::Equal
    }
}

enum Outcome {
    Deleted,
    Gone,
    Failed(String),
}

/// Deletes between two confirmations of the execution's claim.
const FENCE_EVERY: usize = 256;

async fn delete_one(client: &rancher_api::Client, name: &str) -> Outcome {
    let mut last = String::new();
    for attempt in 0..ATTEMPTS {
        let r = match name.strip_prefix("ext/") {
            Some(ext) => client.tokens().delete(RkTokensDelete::new(ext)).await.map(|_| ()),
            None => client
                .management_tokens()
                .delete(RkMgmttokensDelete::new(name))
                .await
                .map(|_| ()),
        };
        match r {
            Ok(()) => return Outcome::Deleted,
            Err(e) if e.is_not_found() => return Outcome::Gone,
            Err(e) if e.is_forbidden() || e.status() == Some(400) => return Outcome::Failed(e.to_string()),
            Err(e) => {
                last = e.to_string();
                let wait = e
                    .retry_after()
                    .unwrap_or(std::time::Duration::from_millis(200 << attempt));
                tokio::time::sleep(wait.min(std::time::Duration::from_secs(5))).await;
            }
        }
    }
    Outcome::Failed(last)
}

/// The page decoding the workflows use: the few fields of a token they read, and nothing else (the generated
/// types keep every field, labels and principal maps included, which is most of the cost of reading a million
/// tokens). Scalars are read as leniently as the generated types read them.
mod lean {
    use rancher_api::de::{opt_bool, opt_i64, opt_string};
    use rancher_api::{ListItem, Page, PageLink, Paginated, Request};
    use serde::Deserialize;

    /// A list request of `R`'s operation whose pages decode into [`List<T>`].
    #[derive(Debug)]
    pub(super) struct Lean<R, T>(pub R, std::marker::PhantomData<fn() -> T>);

    impl<R: Clone, T> Clone for Lean<R, T> {
        fn clone(&self) -> Self {
            Lean(self.0.clone(), std::marker::PhantomData)
        }
    }

    impl<R, T> Lean<R, T> {
        pub(super) fn new(request: R) -> Self {
            Lean(request, std::marker::PhantomData)
        }
    }

    impl<R, T> Request for Lean<R, T>
    where
        R: Request,
        T: serde::de::DeserializeOwned + Send + 'static,
    {
        type Response = List<T>;
        fn spec(&self) -> &'static rancher_api::OperationSpec {
            self.0.spec()
        }
        fn path_values(&self) -> Vec<&str> {
            self.0.path_values()
        }
        fn query_pairs(&self) -> Vec<(&'static str, String)> {
            self.0.query_pairs()
        }
        fn body_bytes(&self) -> Option<Result<Vec<u8>, serde_json::Error>> {
            None
        }
    }

    impl<R, T> Paginated for Lean<R, T>
    where
        R: Paginated,
        R::Response: Page<Item = R::Item>,
        T: serde::de::DeserializeOwned + ListItem + Send + Sync + 'static,
    {
        type Item = T;
        fn set_continue(&mut self, token: Option<String>) {
            self.0.set_continue(token)
        }
        fn set_page_size(&mut self, size: i64) {
            self.0.set_page_size(size)
        }
        fn page_size(&self) -> Option<i64> {
            self.0.page_size()
        }
    }

    /// A Kubernetes list page.
    #[derive(Debug, Deserialize)]
    pub(super) struct List<T> {
        #[serde(default = "Vec::new")]
        items: Vec<T>,
        #[serde(default)]
        metadata: Option<ListMeta>,
    }

    #[derive(Debug, Default, Deserialize)]
    struct ListMeta {
        #[serde(default, rename = "continue", deserialize_with = "opt_string")]
        continue_: Option<String>,
    }

    impl<T> Page for List<T> {
        type Item = T;
        fn into_parts(self) -> (Vec<T>, PageLink) {
            (
                self.items,
                PageLink::from_continue(self.metadata.and_then(|m| m.continue_)),
            )
        }
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    pub(super) struct Meta {
        #[serde(deserialize_with = "opt_string")]
        pub name: Option<String>,
        pub labels: Option<Labels>,
        #[serde(rename = "creationTimestamp", deserialize_with = "opt_string")]
        pub creation_timestamp: Option<String>,
        #[serde(rename = "deletionTimestamp", deserialize_with = "opt_string")]
        pub deletion_timestamp: Option<String>,
    }

    /// The two labels a v3 token's owner and kind may be read from.
    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    pub(super) struct Labels {
        #[serde(rename = "authn.management.cattle.io/token-userId", deserialize_with = "opt_string")]
        pub user_id: Option<String>,
        #[serde(rename = "authn.management.cattle.io/kind", deserialize_with = "opt_string")]
        pub kind: Option<String>,
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    pub(super) struct Principal {
        #[serde(rename = "loginName", deserialize_with = "opt_string")]
        pub login_name: Option<String>,
    }

    /// A `management.cattle.io/v3` Token, as far as the workflows read it.
    #[derive(Debug, Default, Deserialize)]
    #[serde(default, rename_all = "camelCase")]
    pub(super) struct Mgmt {
        pub metadata: Meta,
        #[serde(deserialize_with = "opt_string")]
        pub user_id: Option<String>,
        pub user_principal: Option<Principal>,
        #[serde(deserialize_with = "opt_i64")]
        pub ttl: Option<i64>,
        #[serde(deserialize_with = "opt_string")]
        pub expires_at: Option<String>,
        #[serde(deserialize_with = "opt_bool")]
        pub expired: Option<bool>,
        #[serde(deserialize_with = "opt_bool")]
        pub is_derived: Option<bool>,
        #[serde(deserialize_with = "opt_string")]
        pub cluster_name: Option<String>,
        #[serde(deserialize_with = "opt_string")]
        pub last_used_at: Option<String>,
    }

    /// An `ext.cattle.io/v1` Token, as far as the workflows read it.
    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    pub(super) struct Ext {
        pub metadata: Meta,
        pub spec: ExtSpec,
        pub status: ExtStatus,
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    pub(super) struct ExtSpec {
        #[serde(rename = "userID", deserialize_with = "opt_string")]
        pub user_id: Option<String>,
        #[serde(rename = "userPrincipal")]
        pub user_principal: Option<Principal>,
        #[serde(deserialize_with = "opt_string")]
        pub kind: Option<String>,
        #[serde(deserialize_with = "opt_i64")]
        pub ttl: Option<i64>,
        #[serde(rename = "clusterName", deserialize_with = "opt_string")]
        pub cluster_name: Option<String>,
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    pub(super) struct ExtStatus {
        #[serde(rename = "expiresAt", deserialize_with = "opt_string")]
        pub expires_at: Option<String>,
        #[serde(deserialize_with = "opt_bool")]
        pub expired: Option<bool>,
        #[serde(rename = "lastUsedAt", deserialize_with = "opt_string")]
        pub last_used_at: Option<String>,
    }

    impl ListItem for Mgmt {
        fn list_key(&self) -> Option<String> {
            self.metadata.name.clone()
        }
    }

    impl ListItem for Ext {
        fn list_key(&self) -> Option<String> {
            self.metadata.name.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_inputs(v: Value) -> Result<Filter> {
        Filter::from_typed(&Inputs::from(v).parse::<CleanupInputs>(&CLEANUP_TOKENS)?)
    }

    fn facts(kind: TokenKind, expires_in_days: Option<i64>, last_used_days_ago: Option<i64>) -> TokenFacts {
        let now = Utc::now();
        TokenFacts {
            name: "token-x".into(),
            user: "u-1".into(),
            login: "alice".into(),
            kind,
            expires_at: expires_in_days.map(|d| now + Duration::days(d)),
            server_says_expired: None,
            cluster: String::new(),
            last_used: last_used_days_ago.map(|d| now - Duration::days(d)),
            created: Some(now - Duration::days(400)),
        }
    }

    #[test]
    fn filters_combine_and_a_never_used_token_counts_from_its_creation() {
        let now = Utc::now();
        let f = from_inputs(json!({"filter": "expired", "kind": "api-key"})).unwrap();
        assert!(f.matches(&facts(TokenKind::ApiKey, Some(-1), None).as_ref(), now));
        assert!(!f.matches(&facts(TokenKind::Session, Some(-1), None).as_ref(), now));
        assert!(!f.matches(&facts(TokenKind::ApiKey, None, None).as_ref(), now));
        let f = from_inputs(json!({"unused-days": "90"})).unwrap();
        assert!(
            f.matches(&facts(TokenKind::ApiKey, None, None).as_ref(), now),
            "never used, created 400 days ago"
        );
        assert!(!f.matches(&facts(TokenKind::ApiKey, None, Some(10)).as_ref(), now));
    }

    #[test]
    fn a_cleanup_without_a_condition_or_with_a_typo_is_refused_with_the_fix() {
        let e = from_inputs(json!({})).unwrap_err().to_string();
        assert!(e.contains("filter=expired"), "{e}");
        let e = from_inputs(json!({"filter": "old"})).unwrap_err().to_string();
        assert!(e.contains("`old` is not a filter"), "{e}");
        let e = from_inputs(json!({"kind": "ssh"})).unwrap_err().to_string();
        assert!(e.contains("session, api-key or kubeconfig"), "{e}");
        let e = from_inputs(json!({"unused-days": "-3"})).unwrap_err().to_string();
        assert!(e.contains("whole number"), "{e}");
    }

    #[test]
    fn mgmt_tokens_are_classified_by_rancher_labels() {
        let t: MgmtToken = serde_json::from_value(json!({
            "metadata": {"name": "kubeconfig-u-1abcde", "labels": {"authn.management.cattle.io/kind": "kubeconfig", "authn.management.cattle.io/token-userId": "u-1"}},
            "ttl": 0, "expiresAt": "", "isDerived": true, "clusterName": "c-1", "lastUsedAt": "2026-01-01T00:00:00Z",
            "userPrincipal": {"loginName": "alice"}
        }))
        .unwrap();
        let f = TokenFacts::from_mgmt(&t);
        assert_eq!(
            (f.kind, f.user.as_str(), f.login.as_str(), f.cluster.as_str()),
            (TokenKind::Kubeconfig, "u-1", "alice", "c-1")
        );
        assert!(f.expires_at.is_none() && f.last_used.is_some());
        let s: MgmtToken = serde_json::from_value(json!({"metadata": {"name": "token-s"}, "userId": "u-2", "isDerived": false, "ttl": 1000, "expiresAt": "2020-01-01T00:00:00Z"})).unwrap();
        let f = TokenFacts::from_mgmt(&s);
        assert_eq!(f.kind, TokenKind::Session);
        assert!(f.expired(Utc::now()));
    }

    /// The pages are read through [`lean`]; the public conversions through the generated types. Both must see
    /// the same token the same way.
    #[test]
    fn the_lean_page_decoding_reads_tokens_as_the_generated_types_do() {
        let mgmt = [
            json!({"metadata": {"name": "kubeconfig-u-1abcde", "creationTimestamp": "2025-01-01T00:00:00Z", "labels": {"authn.management.cattle.io/kind": "kubeconfig", "authn.management.cattle.io/token-userId": "u-1", "other": "x"}},
                   "ttl": 0, "expiresAt": "", "isDerived": true, "clusterName": "c-1", "lastUsedAt": "2026-01-01T00:00:00Z",
                   "userPrincipal": {"loginName": "alice", "metadata": {"name": "local://u-1"}}, "groupPrincipals": [{"a": 1}]}),
            json!({"metadata": {"name": "token-s"}, "userId": "u-2", "isDerived": false, "ttl": "1000", "expiresAt": "2020-01-01T00:00:00Z", "expired": null}),
            json!({"metadata": {"name": "token-t", "labels": {"authn.management.cattle.io/token-userId": "u-3"}}, "userId": "", "ttl": 5, "expiresAt": "2999-01-01T00:00:00Z", "expired": true}),
        ];
        for v in mgmt {
            let typed: MgmtToken = serde_json::from_value(v.clone()).unwrap();
            let lean: lean::Mgmt = serde_json::from_value(v.clone()).unwrap();
            assert_eq!(TokenRef::lean_mgmt(&lean), TokenRef::mgmt(&typed), "{v}");
        }
        let ext = [
            json!({"metadata": {"name": "token-e", "creationTimestamp": "2025-01-01T00:00:00Z"}, "spec": {"userID": "u-4", "kind": "session", "ttl": 960000, "clusterName": "",
                   "userPrincipal": {"name": "local://u-4", "loginName": "bob"}}, "status": {"expiresAt": "2025-01-02T00:00:00Z", "expired": true, "lastUsedAt": "2025-01-01T01:00:00Z"}}),
            json!({"metadata": {"name": "token-f"}, "spec": {"userID": "u-5", "kind": "", "ttl": 0}, "status": {}}),
        ];
        for v in ext {
            let typed: Token = serde_json::from_value(v.clone()).unwrap();
            let lean: lean::Ext = serde_json::from_value(v.clone()).unwrap();
            assert_eq!(TokenRef::lean_ext(&lean), TokenRef::ext(&typed), "{v}");
        }
    }

    #[test]
    fn a_user_entry_is_the_counts_then_user_and_login() {
        let c = Counts {
            tokens: 9,
            expired: 1,
            never_expiring: 2,
            cluster_scoped: 3,
            sessions: 4,
            derived: 5,
            kubeconfig: 6,
            unused: 7,
        };
        let mut want = serde_json::to_value(&c).unwrap();
        want["user"] = json!("u-1");
        want["login"] = json!("alice");
        let got = user_entry("u-1".into(), "alice".into(), &c);
        assert_eq!(
            serde_json::to_string(&got).unwrap(),
            serde_json::to_string(&want).unwrap()
        );
    }

    #[test]
    fn pinned_names_are_sorted_without_repeats_and_a_non_list_pins_nothing() {
        let parse =
            |v: Value| serde_json::from_value::<CleanupInputs>(json!({"filter": "expired", "pinned": v})).unwrap();
        let got = parse(json!(["token-b", "ext/token-a", 5, "token-b"]));
        assert_eq!(
            got.pinned
                .as_ref()
                .and_then(PinnedNames::names)
                .map(|n| n.iter().map(|s| s.as_ref()).collect::<Vec<_>>()),
            Some(vec!["ext/token-a", "token-b"])
        );
        assert!(pinned_of(&parse(json!({"count": 2}))).is_err());
        assert!(pinned_of(&parse(json!("token-a"))).is_err());
        assert!(pinned_of(&serde_json::from_value::<CleanupInputs>(json!({"kind": "session"})).unwrap()).is_err());
    }
}
