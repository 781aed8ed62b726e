//! `token-report` and `cleanup-tokens`: every user's tokens, summarised while they stream past (memory grows with
//! the number of users, never with the number of tokens), and an approved, exactly-once cleanup of the tokens a
//! filter picks.

use std::collections::{BTreeSet, HashMap};

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use futures::{StreamExt, TryStreamExt};
use rancher_api::requests::{RkMgmttokensDelete, RkMgmttokensList, RkTokensDelete, RkTokensList};
use rancher_api::types::{MgmtToken, Token};
use serde::Serialize;
use serde_json::{json, Value};

use super::{number, refused, refused_gated, require_rk, text, time};
use crate::catalog::{DefaultApproval, InputKind, InputSpec, WorkflowDef};
use crate::error::{Error, Result};
use crate::exec::{Exec, Table};
use crate::progress::{Progress, Silent};
use crate::session::Session;
use crate::workflow::{Inputs, Pinned, Report, Workflow};

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
        let meta = t.metadata.as_ref();
        let label = |k: &str| {
            meta.and_then(|m| m.labels.as_ref())
                .and_then(|l| l.get(k))
                .map(String::as_str)
        };
        let user = t
            .user_id
            .clone()
            .filter(|u| !u.is_empty())
            .or_else(|| label("authn.management.cattle.io/token-userId").map(str::to_string))
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
            .unwrap_or_default()
            .to_string();
        TokenFacts {
            name: meta.and_then(|m| m.name.clone()).unwrap_or_default(),
            user,
            login,
            kind,
            expires_at: if t.ttl.unwrap_or(0) > 0 {
                time(t.expires_at.as_deref())
            } else {
                None
            },
            server_says_expired: t.expired,
            cluster: t.cluster_name.clone().unwrap_or_default(),
            last_used: time(t.last_used_at.as_deref()),
            created: time(meta.and_then(|m| m.creation_timestamp.as_deref())),
        }
    }

    /// From an `ext.cattle.io/v1` Token (Rancher 2.12+; its spec names the owner, its status the times).
    pub fn from_ext(t: &Token) -> TokenFacts {
        let meta = t.metadata.as_ref();
        let spec = t.spec.as_ref();
        let status = t.status.as_ref();
        let kind = match spec.and_then(|s| s.kind.as_deref()) {
            Some("session") => TokenKind::Session,
            Some("kubeconfig") => TokenKind::Kubeconfig,
            _ => TokenKind::ApiKey,
        };
        TokenFacts {
            name: format!("ext/{}", meta.and_then(|m| m.name.as_deref()).unwrap_or_default()),
            user: spec.and_then(|s| s.user_id.clone()).unwrap_or_default(),
            login: spec
                .and_then(|s| s.user_principal.as_ref())
                .and_then(|p| p.login_name.clone())
                .unwrap_or_default(),
            kind,
            expires_at: if spec.and_then(|s| s.ttl).unwrap_or(0) > 0 {
                time(status.and_then(|s| s.expires_at.as_deref()))
            } else {
                None
            },
            server_says_expired: status.and_then(|s| s.expired),
            cluster: spec.and_then(|s| s.cluster_name.clone()).unwrap_or_default(),
            last_used: time(status.and_then(|s| s.last_used_at.as_deref())),
            created: time(meta.and_then(|m| m.creation_timestamp.as_deref())),
        }
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
    progress.stage("reading tokens", None);
    let mut each = |t: TokenFacts| {
        progress.advance(1);
        each(t)
    };
    let client = &session.client;
    let mut mgmt = client.management_tokens().list(RkMgmttokensList::new().limit(PAGE));
    while let Some(t) = mgmt
        .try_next()
        .await
        .map_err(|e| refused_gated("tokens.management.cattle.io", e))?
    {
        if t.metadata.as_ref().is_some_and(|m| m.deletion_timestamp.is_some()) {
            continue;
        }
        each(TokenFacts::from_mgmt(&t));
    }
    if session.version.at_least(2, 12) {
        let mut ext = client.tokens().list(RkTokensList::new().limit(PAGE));
        while let Some(t) = ext.try_next().await.map_err(|e| refused("tokens.ext.cattle.io", e))? {
            each(TokenFacts::from_ext(&t));
        }
    }
    Ok(())
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
    fn add(&mut self, t: &TokenFacts, now: DateTime<Utc>, unused_days: i64) {
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

/// The `token-report` workflow.
pub struct TokenReport;

#[async_trait]
impl Workflow for TokenReport {
    fn def(&self) -> &'static WorkflowDef {
        &TOKEN_REPORT
    }

    fn check(&self, inputs: &Inputs) -> Result<()> {
        number(TOKEN_REPORT.id, inputs, "unused-days")?;
        number(TOKEN_REPORT.id, inputs, "top")?;
        Ok(())
    }

    async fn run(&self, exec: &mut Exec<'_>, inputs: &Inputs) -> Result<Report> {
        let session = exec.session();
        require_rk(TOKEN_REPORT.id, session)?;
        let unused_days = number(TOKEN_REPORT.id, inputs, "unused-days")?.unwrap_or(90);
        let top = number(TOKEN_REPORT.id, inputs, "top")?.map(|n| n as usize);
        // Expired and unused as Rancher's clock sees them.
        let now = server_clock(session, Utc::now)
            .await?
            .map(|(server, _)| server)
            .unwrap_or_else(Utc::now);
        let mut totals = Counts::default();
        // Per user: the counts and a login name. Bounded by the number of users.
        let mut per_user: HashMap<String, (String, Counts)> = HashMap::new();
        each_token(session, exec.progress().as_ref(), |t| {
            totals.add(&t, now, unused_days);
            let entry = per_user.entry(t.user.clone()).or_default();
            if entry.0.is_empty() && !t.login.is_empty() {
                entry.0 = t.login.clone();
            }
            entry.1.add(&t, now, unused_days);
        })
        .await?;
        let users_total = per_user.len();
        let mut users: Vec<(String, String, Counts)> =
            per_user.into_iter().map(|(id, (login, c))| (id, login, c)).collect();
        users.sort_by(|a, b| b.2.tokens.cmp(&a.2.tokens).then_with(|| a.0.cmp(&b.0)));
        if let Some(n) = top {
            users.truncate(n);
        }
        let rows = users
            .iter()
            .map(|(id, login, c)| {
                vec![
                    id.clone(),
                    login.clone(),
                    c.tokens.to_string(),
                    c.expired.to_string(),
                    c.never_expiring.to_string(),
                    c.cluster_scoped.to_string(),
                    c.sessions.to_string(),
                    c.derived.to_string(),
                    c.kubeconfig.to_string(),
                    c.unused.to_string(),
                ]
            })
            .collect();
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
        let users_json: Vec<Value> = users
            .into_iter()
            .map(|(id, login, c)| {
                let mut v = serde_json::to_value(c).unwrap_or(Value::Null);
                v["user"] = json!(id);
                v["login"] = json!(login);
                v
            })
            .collect();
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

/// A cleanup filter: every given condition must hold.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Filter {
    expired: bool,
    unused_days: Option<i64>,
    user: Option<String>,
    kind: Option<TokenKind>,
}

impl Filter {
    fn from_inputs(inputs: &Value) -> Result<Filter> {
        let id = CLEANUP_TOKENS.id;
        let expired = match text(id, inputs, "filter")? {
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
        let kind = match text(id, inputs, "kind")? {
            None => None,
            Some(k) => Some(TokenKind::parse(k).ok_or_else(|| Error::Input {
                workflow: id.into(),
                input: "kind".into(),
                message: format!("`{k}` is not a token kind; use session, api-key or kubeconfig"),
            })?),
        };
        let f = Filter {
            expired,
            unused_days: number(id, inputs, "unused-days")?,
            user: text(id, inputs, "user")?.map(str::to_string),
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

    fn matches(&self, t: &TokenFacts, now: DateTime<Utc>) -> bool {
        (!self.expired || t.expired(now))
            && self.unused_days.is_none_or(|d| t.unused_for(d, now))
            && self.user.as_ref().is_none_or(|u| &t.user == u)
            && self.kind.is_none_or(|k| t.kind == k)
    }
}

/// The caller's own token, which a cleanup never deletes (it would cut the run off mid-way).
fn own_token(session: &Session) -> Option<String> {
    let name = session.client.token_name()?;
    Some(name)
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

/// Matching tokens, in name order, without the caller's own, judged by the server's clock.
async fn matching(
    session: &Session,
    filter: &Filter,
    local: LocalClock,
    progress: &dyn Progress,
) -> Result<(Vec<TokenFacts>, Option<String>)> {
    let (now, note) = judge_time(session, filter, local).await?;
    let own = own_token(session);
    let mut out = Vec::new();
    each_token(session, progress, |t| {
        let is_own = own
            .as_deref()
            .is_some_and(|o| t.name == o || t.name.strip_prefix("ext/") == Some(o));
        if !is_own && filter.matches(&t, now) {
            out.push(t);
        }
    })
    .await?;
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok((out, note))
}

fn pinned_names(inputs: &Value) -> Option<BTreeSet<String>> {
    inputs
        .get("pinned")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
}

/// The `cleanup-tokens` workflow.
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

#[async_trait]
impl Workflow for CleanupTokens {
    fn def(&self) -> &'static WorkflowDef {
        &CLEANUP_TOKENS
    }

    fn check(&self, inputs: &Inputs) -> Result<()> {
        Filter::from_inputs(inputs).map(|_| ())
    }

    async fn prepare(&self, session: &Session, mut inputs: Inputs) -> Result<Pinned> {
        require_rk(CLEANUP_TOKENS.id, session)?;
        let filter = Filter::from_inputs(&inputs)?;
        if filter.unused_days.is_some() && !records_last_use(session) {
            return Err(Error::Refused(format!(
                "cleanup-tokens unused-days=N needs to know when tokens were last used, and Rancher {} does not record it (2.10 added lastUsedAt); going by creation time would delete keys in daily use. Use filter=expired, user= or kind= instead, or upgrade Rancher",
                session.version
            )));
        }
        let (found, note) = matching(session, &filter, self.local_clock, &Silent).await?;
        if found.is_empty() {
            return Err(Error::NotFound(
                "no token matches this filter; nothing to approve (`rancherctl run token-report` shows what there is)"
                    .into(),
            ));
        }
        let mut users: Vec<&str> = found.iter().map(|t| t.user.as_str()).collect();
        users.sort_unstable();
        users.dedup();
        let sample: Vec<Value> = found
            .iter()
            .take(SAMPLE)
            .map(|t| json!({"name": t.name, "user": t.user, "login": t.login, "kind": t.kind.as_str(), "expires_at": t.expires_at.map(|e| e.to_rfc3339()), "last_used": t.last_used.map(|e| e.to_rfc3339())}))
            .collect();
        inputs["shown"] = json!({"count": found.len(), "users": users.len(), "sample": sample});
        if let Some(n) = note {
            inputs["shown"]["clock"] = json!(n);
        }
        inputs["pinned"] = json!(found.iter().map(|t| t.name.as_str()).collect::<Vec<_>>());
        // No targets: a cleanup only takes away, so an owner of some of the tokens (often an admin) may approve it.
        Ok(Pinned {
            inputs,
            targets: Vec::new(),
        })
    }

    async fn run(&self, exec: &mut Exec<'_>, inputs: &Inputs) -> Result<Report> {
        let session = exec.session();
        require_rk(CLEANUP_TOKENS.id, session)?;
        let filter = Filter::from_inputs(inputs)?;
        let progress = exec.progress();
        let (now_matching, _) = matching(session, &filter, self.local_clock, progress.as_ref()).await?;
        if exec.is_dry_run() {
            let rows: Vec<Vec<String>> = now_matching
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
            let names: Vec<&str> = now_matching.iter().map(|t| t.name.as_str()).collect();
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
        // Only what approvers saw: the pinned names, each only while it still matches.
        let pinned = pinned_names(inputs).ok_or_else(|| {
            Error::Refused(
                "cleanup-tokens runs only the token names pinned at submit; this request has none. Submit it again"
                    .into(),
            )
        })?;
        let still: BTreeSet<&str> = now_matching.iter().map(|t| t.name.as_str()).collect();
        let to_delete: Vec<String> = pinned.iter().filter(|n| still.contains(n.as_str())).cloned().collect();
        let no_longer_matching = pinned.len() - to_delete.len();
        let client = session.client.clone();
        // Fenced a chunk at a time: before each chunk the execution's claim is confirmed, so an executor that was
        // paused and taken over stops within one chunk instead of going on deleting (a delete repeated by the new
        // executor finds the token gone, so nothing is counted twice either way).
        let mut results: Vec<(String, Outcome)> = Vec::with_capacity(to_delete.len());
        progress.stage("deleting tokens", Some(to_delete.len() as u64));
        for chunk in to_delete.chunks(FENCE_EVERY) {
            exec.confirm_claim().await?;
            let done: Vec<(String, Outcome)> = futures::stream::iter(chunk.iter().cloned().map(|name| {
                let client = client.clone();
                async move {
                    let outcome = delete_one(&client, &name).await;
                    (name, outcome)
                }
            }))
            .buffer_unordered(CONCURRENCY)
            .inspect(|_| progress.advance(1))
            .collect()
            .await;
            results.extend(done);
        }
        let mut deleted = 0usize;
        let mut gone = 0usize;
        let mut failed = Vec::new();
        for (name, o) in &results {
            match o {
                Outcome::Deleted => deleted += 1,
                Outcome::Gone => gone += 1,
                Outcome::Failed(e) => failed.push(json!({"name": name, "error": e})),
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

    async fn applied(&self, session: &Session, inputs: &Inputs) -> Result<Option<bool>> {
        // Done when no pinned token that still matches is left on the server; otherwise the run continues with
        // exactly those (the ones deleted before the crash are gone and are not sent again).
        let Some(pinned) = pinned_names(inputs) else {
            return Ok(None);
        };
        let filter = Filter::from_inputs(inputs)?;
        let left = matching(session, &filter, self.local_clock, &Silent)
            .await?
            .0
            .into_iter()
            .filter(|t| pinned.contains(&t.name))
            .count();
        Ok(Some(left == 0))
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

#[cfg(test)]
mod tests {
    use super::*;

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
        let f = Filter::from_inputs(&json!({"filter": "expired", "kind": "api-key"})).unwrap();
        assert!(f.matches(&facts(TokenKind::ApiKey, Some(-1), None), now));
        assert!(!f.matches(&facts(TokenKind::Session, Some(-1), None), now));
        assert!(!f.matches(&facts(TokenKind::ApiKey, None, None), now));
        let f = Filter::from_inputs(&json!({"unused-days": "90"})).unwrap();
        assert!(
            f.matches(&facts(TokenKind::ApiKey, None, None), now),
            "never used, created 400 days ago"
        );
        assert!(!f.matches(&facts(TokenKind::ApiKey, None, Some(10)), now));
    }

    #[test]
    fn a_cleanup_without_a_condition_or_with_a_typo_is_refused_with_the_fix() {
        let e = Filter::from_inputs(&json!({})).unwrap_err().to_string();
        assert!(e.contains("filter=expired"), "{e}");
        let e = Filter::from_inputs(&json!({"filter": "old"})).unwrap_err().to_string();
        assert!(e.contains("`old` is not a filter"), "{e}");
        let e = Filter::from_inputs(&json!({"kind": "ssh"})).unwrap_err().to_string();
        assert!(e.contains("session, api-key or kubeconfig"), "{e}");
        let e = Filter::from_inputs(&json!({"unused-days": "-3"}))
            .unwrap_err()
            .to_string();
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
}
