//! Token sprawl: `SimConfig::tokens(N)` seeds N extra tokens spread over the users with the mix a long-lived
//! Rancher accumulates (login sessions, API keys, kubeconfig tokens; expired ones Rancher has not purged yet,
//! never-expiring keys, cluster-scoped keys, and a spread of last-use times).
//!
//! Shapes follow Rancher: a `management.cattle.io/v3` Token carries its owner in `userId` and in the label
//! `authn.management.cattle.io/token-userId`, and its kind in the label `authn.management.cattle.io/kind`
//! (`session` for a login, `kubeconfig` for a kubeconfig token, empty for an API key) (rancher/rancher
//! pkg/auth/tokens/manager.go `UserIDLabel`, `TokenKindLabel`); from 2.10 `lastUsedAt` is set on authenticated use
//! (pkg/apis/management.cattle.io/v3/authn_types.go; `auth::note_use`) and absent for a token never used. On 2.12+ a share of the
//! tokens are `ext.cattle.io/v1` Tokens (pkg/ext/stores/tokens), owned through the label `cattle.io/user-id`.
//! Seeded tokens have no usable secret: nobody holds them, as nobody holds a forgotten key.

use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};

use crate::config::SimConfig;
use crate::state::{fmt_ms, key_of, now_ms, Kind, Store};

/// A login session lives 16 hours by default (`auth-user-session-ttl-minutes` = 960).
const SESSION_TTL_MS: i64 = 960 * 60_000;
/// Kubeconfig tokens live 30 days by default (`kubeconfig-default-token-ttl-minutes` = 43200).
const KUBECONFIG_TTL_MS: i64 = 43_200 * 60_000;
const DAY_MS: i64 = 86_400_000;

/// One user a token can belong to.
struct Owner {
    id: String,
    username: String,
    display: String,
}

/// The share of seeded tokens that are ext tokens on 2.12+ (one in `EXT_EVERY`).
const EXT_EVERY: usize = 10;

/// Seeds `cfg.tokens` tokens over every non-system user, skewed so a few users hold many (as in the field).
/// Deterministic for a seed, apart from times, which are relative to now so the expired share stays stable.
pub(crate) fn seed_tokens(store: &mut Store, cfg: &SimConfig, downstream: &str) {
    if cfg.tokens == 0 {
        return;
    }
    let owners: Vec<Owner> = store
        .map(Kind::User)
        .values()
        .filter(|u| {
            !u.get("principalIds")
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().any(|p| p.as_str().is_some_and(|p| p.starts_with("system://"))))
        })
        .map(|u| Owner {
            id: u
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            username: u
                .get("username")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            display: u
                .get("displayName")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        })
        .collect();
    if owners.is_empty() {
        return;
    }
    let ext = cfg.version.at_least(2, 12);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x70c3_e115);
    let now = now_ms();
    let created_ts = fmt_ms(now - 400 * DAY_MS);
    for i in 0..cfg.tokens {
        // Skew: squaring a uniform draw puts most tokens on the first users of the (sorted) list.
        let r: f64 = rng.gen();
        let who = &owners[((r * r) * owners.len() as f64) as usize % owners.len()];
        let roll: u32 = rng.gen_range(0..100);
        let age = rng.gen_range(0..400 * DAY_MS);
        let created = now - age;
        // Kind mix: 25% login sessions, 10% kubeconfig tokens, the rest API keys (30% of those never expire,
        // 8% of those scoped to the downstream cluster).
        let (kind, ttl, derived, cluster) = match roll {
            0..=24 => ("session", SESSION_TTL_MS, false, ""),
            25..=34 => ("kubeconfig", KUBECONFIG_TTL_MS, true, ""),
            35..=54 => ("", 0, true, ""),
            55..=59 => ("", 0, true, downstream),
            60..=79 => ("", 90 * DAY_MS, true, ""),
            _ => ("", 30 * DAY_MS, true, ""),
        };
        // Last use: a fifth never used; the rest some time between creation and now.
        let last_used = if rng.gen_range(0..5) == 0 {
            None
        } else {
            Some(created + rng.gen_range(0..=age.max(1)))
        };
        // v3 Tokens have no `lastUsedAt` before 2.10 (authn_types.go); ext tokens only exist from 2.12.
        let mgmt_last_used = last_used.filter(|_| cfg.version.at_least(2, 10));
        if ext && i % EXT_EVERY == EXT_EVERY - 1 && kind != "kubeconfig" {
            let name = store.fresh_name(Kind::ExtToken, "", "token-");
            let obj = ext_token(
                &name,
                who,
                kind,
                ttl,
                created,
                last_used,
                cluster,
                cfg.version.at_least(2, 13),
            );
            put(store, Kind::ExtToken, name, obj, &created_ts);
        } else {
            // Kubeconfig tokens are named after their owner (ops::new_v3_token, as Rancher's kubeconfig handler does).
            let prefix = if kind == "kubeconfig" {
                format!("kubeconfig-{}", who.id)
            } else {
                "token-".to_string()
            };
            let name = store.fresh_name(Kind::Token, "", &prefix);
            let obj = mgmt_token(&name, who, kind, ttl, created, derived, cluster, mgmt_last_used);
            put(store, Kind::Token, name, obj, &created_ts);
        }
    }
}

fn put(store: &mut Store, kind: Kind, name: String, mut obj: Value, created: &str) {
    let info = kind.info();
    obj["apiVersion"] = json!(format!("{}/{}", info.group, info.version));
    obj["kind"] = json!(info.kind_name);
    store.stamp_new(&mut obj, created);
    let key = key_of(kind, "", &name);
    store.put(kind, key, obj, None);
}

#[allow(clippy::too_many_arguments)]
fn mgmt_token(
    name: &str,
    who: &Owner,
    kind: &str,
    ttl: i64,
    created: i64,
    derived: bool,
    cluster: &str,
    last_used: Option<i64>,
) -> Value {
    let mut labels = Map::new();
    labels.insert("authn.management.cattle.io/token-userId".into(), json!(who.id));
    labels.insert("authn.management.cattle.io/kind".into(), json!(kind));
    labels.insert("cattle.io/creator".into(), json!("norman"));
    let mut obj = json!({
        "metadata": {"name": name, "labels": labels},
        "userId": who.id,
        "authProvider": "local",
        "userPrincipal": {"metadata": {"name": format!("local://{}", who.id)}, "displayName": who.display, "loginName": who.username,
                           "principalType": "user", "provider": "local"},
        "ttl": ttl,
        "expiresAt": if ttl > 0 { fmt_ms(created + ttl) } else { String::new() },
        "isDerived": derived,
        "description": match kind { "session" => "", "kubeconfig" => "Kubeconfig token", _ => "API key" },
        "clusterName": cluster,
        "enabled": true,
        "lastUpdateTime": "",
    });
    if let Some(t) = last_used {
        obj["lastUsedAt"] = json!(fmt_ms(t));
    }
    obj
}

#[allow(clippy::too_many_arguments)]
fn ext_token(
    name: &str,
    who: &Owner,
    kind: &str,
    ttl: i64,
    created: i64,
    last_used: Option<i64>,
    cluster: &str,
    has_cluster: bool,
) -> Value {
    let mut spec = json!({
        "userID": who.id,
        "userPrincipal": {"name": format!("local://{}", who.id), "displayName": who.display, "loginName": who.username,
                           "principalType": "user", "provider": "local"},
        "kind": kind,
        "ttl": ttl,
        "enabled": true,
        "description": if kind == "session" { "" } else { "API key" },
    });
    if has_cluster {
        spec["clusterName"] = json!(cluster);
    }
    let mut status = json!({"current": false, "expired": false, "expiresAt": if ttl > 0 { fmt_ms(created + ttl) } else { String::new() },
                            "lastUpdateTime": fmt_ms(created)});
    if let Some(t) = last_used {
        status["lastUsedAt"] = json!(fmt_ms(t));
    }
    json!({
        "metadata": {"name": name, "labels": {"cattle.io/user-id": who.id, "authn.management.cattle.io/kind": kind}},
        "spec": spec,
        "status": status,
    })
}
