//! Who is on call, for the rules' `oncall("schedule")`: PagerDuty (`GET /oncalls?schedule_ids[]=...`) and Opsgenie
//! (`GET /v2/schedules/{id}/on-calls`) over their REST APIs, each answer cached for 60 s.
//!
//! A schedule is written `pagerduty:ID` or `opsgenie:ID`; a bare `ID` goes to PagerDuty when it is configured, else
//! to Opsgenie. The requester is on call when one of the schedule's current on-call people is them: the e-mail
//! address the user map gives for their username (or user id), else an address equal to their username or whose
//! part before `@` is their username.
//!
//! When the provider cannot be asked (no connection, an error status, an answer in another shape) the fact is
//! unknown, with why: rules that ask fail closed, and the request keeps the reason. The API keys are read from
//! files and never logged; failures are not cached, so a provider that comes back is asked again at once.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use rancher_approval::rules::{OnCall, RequesterFacts};
use rancher_workflows::policies::OnCallSource;
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::Value;
use url::Url;

/// How long one schedule's answer is used.
pub const CACHE_FOR: Duration = Duration::from_secs(60);

/// PagerDuty's REST API.
pub const PAGERDUTY_URL: &str = "https://api.pagerduty.com";
/// Opsgenie's REST API.
pub const OPSGENIE_URL: &str = "https://api.opsgenie.com";

/// One provider: its base URL and API key.
#[derive(Clone)]
pub struct Provider {
    /// The API's base URL (a fake's on loopback in tests).
    pub url: Url,
    /// The API key (PagerDuty: a REST API token; Opsgenie: an API integration key).
    pub key: SecretString,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("url", &self.url.as_str())
            .field("key", &"***")
            .finish()
    }
}

/// The on-call providers and who is who in them.
#[derive(Debug, Clone, Default)]
pub struct OnCallConfig {
    /// PagerDuty, if configured.
    pub pagerduty: Option<Provider>,
    /// Opsgenie, if configured.
    pub opsgenie: Option<Provider>,
    /// Rancher username (or user id) -> the e-mail address the providers know them by.
    pub users: BTreeMap<String, String>,
}

impl OnCallConfig {
    /// Whether any provider is configured.
    pub fn any(&self) -> bool {
        self.pagerduty.is_some() || self.opsgenie.is_some()
    }
}

/// Reads a user map: a YAML or JSON object of Rancher username (or user id) to e-mail address.
pub fn read_user_map(path: &std::path::Path) -> Result<BTreeMap<String, String>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the on-call user map {}: {e}", path.display()))?;
    rancher_approval::rules::from_yaml(&text).map_err(|e| {
        format!(
            "the on-call user map {} is not a map of username to e-mail address: {e}",
            path.display()
        )
    })
}

/// A person on call in one schedule, as the provider names them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct OnCallPerson {
    email: String,
    name: String,
}

/// The providers' clients, with the 60 s cache.
pub struct OnCallClients {
    http: reqwest::Client,
    config: OnCallConfig,
    cache: Mutex<HashMap<String, (Instant, Vec<OnCallPerson>)>>,
}

impl std::fmt::Debug for OnCallClients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnCallClients")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Which provider a schedule goes to, and its id there.
fn route<'a>(config: &'a OnCallConfig, schedule: &'a str) -> Result<(&'static str, &'a Provider, &'a str), String> {
    let (name, id) = match schedule.split_once(':') {
        Some(("pagerduty", id)) => ("PagerDuty", id),
        Some(("opsgenie", id)) => ("Opsgenie", id),
        _ if config.pagerduty.is_some() => ("PagerDuty", schedule),
        _ => ("Opsgenie", schedule),
    };
    let provider = match name {
        "PagerDuty" => config.pagerduty.as_ref(),
        _ => config.opsgenie.as_ref(),
    };
    match provider {
        Some(p) => Ok((name, p, id)),
        None => Err(format!(
            "{name} is not configured (serve --{}-key-file)",
            name.to_lowercase()
        )),
    }
}

/// The provider's own error message from an error body (PagerDuty `{"error": {"message"}}`, Opsgenie
/// `{"message"}`), on one line and short.
fn error_message(body: &Value) -> String {
    let m = body
        .pointer("/error/message")
        .or_else(|| body.get("message"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let m: String = m.chars().filter(|c| !c.is_control()).take(200).collect();
    if m.is_empty() {
        String::new()
    } else {
        format!(": {m}")
    }
}

/// The people PagerDuty's `/oncalls` answer lists for schedule `id`.
fn pagerduty_people(body: &Value, id: &str) -> Result<Vec<OnCallPerson>, String> {
    let list = body
        .get("oncalls")
        .and_then(Value::as_array)
        .ok_or("PagerDuty's answer has no `oncalls` list")?;
    Ok(list
        .iter()
        .filter(|o| {
            o.pointer("/schedule/id")
                .and_then(Value::as_str)
                .is_none_or(|s| s == id)
        })
        .filter_map(|o| o.get("user"))
        .map(|u| OnCallPerson {
            email: u.get("email").and_then(Value::as_str).unwrap_or_default().to_string(),
            name: u
                .get("name")
                .or_else(|| u.get("summary"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        })
        .collect())
}

/// The people Opsgenie's flat on-calls answer lists.
fn opsgenie_people(body: &Value) -> Result<Vec<OnCallPerson>, String> {
    let list = body
        .pointer("/data/onCallRecipients")
        .and_then(Value::as_array)
        .ok_or("Opsgenie's answer has no `data.onCallRecipients` list")?;
    Ok(list
        .iter()
        .filter_map(Value::as_str)
        .map(|e| OnCallPerson {
            email: e.to_string(),
            name: String::new(),
        })
        .collect())
}

/// Whether `who` is one of `people`.
fn is_on_call(people: &[OnCallPerson], who: &RequesterFacts, users: &BTreeMap<String, String>) -> bool {
    let mapped = users.get(&who.name).or_else(|| users.get(&who.id));
    people.iter().any(|p| {
        let email = p.email.trim();
        if email.is_empty() {
            return false;
        }
        match mapped {
            Some(m) => email.eq_ignore_ascii_case(m.trim()),
            None => {
                !who.name.is_empty()
                    && (email.eq_ignore_ascii_case(&who.name)
                        || email
                            .split_once('@')
                            .is_some_and(|(local, _)| local.eq_ignore_ascii_case(&who.name)))
            }
        }
    })
}

impl OnCallClients {
    /// Clients of the configured providers over `http`.
    pub fn new(http: reqwest::Client, config: OnCallConfig) -> Self {
        OnCallClients {
            http,
            config,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Who is on call in `schedule` now: from the cache when asked in the last 60 s, else from the provider.
    async fn people(&self, schedule: &str) -> Result<Vec<OnCallPerson>, String> {
        if let Ok(c) = self.cache.lock() {
            if let Some((at, people)) = c.get(schedule) {
                if at.elapsed() < CACHE_FOR {
                    return Ok(people.clone());
                }
            }
        }
        let (name, provider, id) = route(&self.config, schedule)?;
        let key = provider.key.expose_secret();
        let req = if name == "PagerDuty" {
            let mut u = provider.url.clone();
            u.path_segments_mut()
                .map_err(|_| "the PagerDuty URL cannot be a base".to_string())?
                .pop_if_empty()
                .push("oncalls");
            u.query_pairs_mut()
                .append_pair("schedule_ids[]", id)
                .append_pair("include[]", "users")
                .append_pair("time_zone", "UTC");
            self.http
                .get(u)
                .header("Authorization", format!("Token token={key}"))
                .header("Accept", "application/vnd.pagerduty+json;version=2")
        } else {
            let mut u = provider.url.clone();
            u.path_segments_mut()
                .map_err(|_| "the Opsgenie URL cannot be a base".to_string())?
                .pop_if_empty()
                .extend(["v2", "schedules", id, "on-calls"]);
            u.query_pairs_mut().append_pair("flat", "true");
            self.http.get(u).header("Authorization", format!("GenieKey {key}"))
        };
        let resp = req
            .send()
            .await
            .map_err(|e| format!("{name} could not be reached: {}", without_url(&e)))?;
        let status = resp.status();
        let body: Value = resp
            .json()
            .await
            .map_err(|_| format!("{name} answered {status} with a body that is not JSON"))?;
        if !status.is_success() {
            return Err(format!("{name} answered {status}{}", error_message(&body)));
        }
        let people = if name == "PagerDuty" {
            pagerduty_people(&body, id)?
        } else {
            opsgenie_people(&body)?
        };
        if let Ok(mut c) = self.cache.lock() {
            c.insert(schedule.to_string(), (Instant::now(), people.clone()));
        }
        Ok(people)
    }
}

/// A reqwest error without its URL (it may carry query values).
fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(u) = e.url() {
        s = s.replace(u.as_str(), "<url>");
    }
    s
}

impl OnCallSource for OnCallClients {
    fn on_call<'a>(&'a self, schedule: &'a str, who: &'a RequesterFacts) -> BoxFuture<'a, OnCall> {
        Box::pin(async move {
            match self.people(schedule).await {
                Ok(people) => OnCall::Known(is_on_call(&people, who, &self.config.users)),
                Err(why) => {
                    tracing::warn!(schedule, problem = %why, "on-call source unavailable");
                    OnCall::Unknown {
                        unknown: format!("on-call source unavailable: {why}"),
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn alice() -> RequesterFacts {
        RequesterFacts {
            id: "u-alice".into(),
            name: "alice".into(),
            groups: vec![],
            admin: false,
        }
    }

    #[test]
    fn pagerduty_and_opsgenie_answers_are_read_in_their_documented_shapes() {
        let pd = json!({"oncalls": [
            {"user": {"id": "PU1", "type": "user", "name": "Alice Example", "email": "alice@example.com"},
             "schedule": {"id": "PSCHED1", "type": "schedule_reference"}, "escalation_level": 1,
             "start": "2026-12-08T00:00:00Z", "end": "2026-12-09T00:00:00Z"},
            {"user": {"id": "PU2", "name": "Bob", "email": "bob@example.com"}, "schedule": {"id": "OTHER"}},
        ], "limit": 25, "offset": 0, "more": false});
        let people = pagerduty_people(&pd, "PSCHED1").unwrap();
        assert_eq!(people.len(), 1);
        assert_eq!(people[0].email, "alice@example.com");
        let og = json!({"data": {"_parent": {"id": "s1", "name": "ops", "enabled": true},
                                 "onCallRecipients": ["alice@example.com"]}, "took": 0.1, "requestId": "r"});
        assert_eq!(opsgenie_people(&og).unwrap()[0].email, "alice@example.com");
        assert!(pagerduty_people(&json!({"error": {"message": "x"}}), "P").is_err());
        assert!(opsgenie_people(&json!({"message": "x"})).is_err());
        assert_eq!(
            error_message(&json!({"error": {"message": "Invalid Token", "code": 2006}})),
            ": Invalid Token"
        );
        assert_eq!(
            error_message(&json!({"message": "Could not authenticate", "took": 0.0})),
            ": Could not authenticate"
        );
    }

    #[test]
    fn the_requester_is_matched_by_the_user_map_else_by_username() {
        let people = vec![OnCallPerson {
            email: "Alice@Example.com".into(),
            name: "Alice".into(),
        }];
        let none = BTreeMap::new();
        assert!(is_on_call(&people, &alice(), &none));
        let mut bob = alice();
        bob.name = "bob".into();
        assert!(!is_on_call(&people, &bob, &none));
        // A map entry decides on its own: alice mapped elsewhere is not on call as alice@example.com.
        let mapped: BTreeMap<String, String> = [("alice".to_string(), "a.example@corp.example".to_string())].into();
        assert!(!is_on_call(&people, &alice(), &mapped));
        let bob_is_alice: BTreeMap<String, String> = [("bob".to_string(), "alice@example.com".to_string())].into();
        assert!(is_on_call(&people, &bob, &bob_is_alice));
        let mut nameless = alice();
        nameless.name.clear();
        assert!(!is_on_call(&people, &nameless, &none));
    }

    /// A fake of both providers on loopback: PagerDuty's `/oncalls` and Opsgenie's flat on-calls, each checking its
    /// auth header; `/down/...` answers 503 with Opsgenie's error body. Answers the base URL and a call count.
    async fn fake() -> (Url, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use axum::extract::{Path, RawQuery};
        use axum::http::{HeaderMap, StatusCode};
        use axum::routing::get;
        let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (c1, c2) = (calls.clone(), calls.clone());
        let app = axum::Router::new()
            .route(
                "/oncalls",
                get(move |h: HeaderMap, RawQuery(q): RawQuery| async move {
                    c1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if h.get("authorization").and_then(|v| v.to_str().ok()) != Some("Token token=pd-key-0123456789abc") {
                        return (StatusCode::UNAUTHORIZED, axum::Json(json!({"error": {"message": "Unauthorized", "code": 2006}})));
                    }
                    let q = q.unwrap_or_default();
                    assert!(q.contains("schedule_ids%5B%5D=PS1") && q.contains("include%5B%5D=users"), "{q}");
                    (StatusCode::OK, axum::Json(json!({"oncalls": [
                        {"user": {"id": "PU1", "name": "Alice", "email": "alice@example.com"}, "schedule": {"id": "PS1"}}
                    ], "more": false})))
                }),
            )
            .route(
                "/v2/schedules/{id}/on-calls",
                get(move |Path(id): Path<String>, h: HeaderMap, RawQuery(q): RawQuery| async move {
                    c2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if h.get("authorization").and_then(|v| v.to_str().ok()) != Some("GenieKey og-key-0123456789abc") {
                        return (StatusCode::UNAUTHORIZED, axum::Json(json!({"message": "Could not authenticate", "took": 0.0})));
                    }
                    assert_eq!(q.as_deref(), Some("flat=true"));
                    (StatusCode::OK, axum::Json(json!({"data": {"_parent": {"id": id, "name": id, "enabled": true},
                        "onCallRecipients": ["bob@example.com"]}, "took": 0.01, "requestId": "r1"})))
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, calls)
    }

    #[tokio::test]
    async fn both_providers_are_asked_over_http_with_their_auth_and_answers_are_cached() {
        let (url, calls) = fake().await;
        let provider = |key: &str| Provider {
            url: url.clone(),
            key: SecretString::from(key.to_string()),
        };
        let clients = OnCallClients::new(
            reqwest::Client::new(),
            OnCallConfig {
                pagerduty: Some(provider("pd-key-0123456789abc")),
                opsgenie: Some(provider("og-key-0123456789abc")),
                users: BTreeMap::new(),
            },
        );
        let mut bob = alice();
        bob.name = "bob".into();
        assert_eq!(clients.on_call("PS1", &alice()).await, OnCall::Known(true));
        assert_eq!(clients.on_call("PS1", &bob).await, OnCall::Known(false));
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1, "cached for 60 s");
        assert_eq!(clients.on_call("opsgenie:ops", &bob).await, OnCall::Known(true));
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);

        // A wrong key: unknown, with the provider's own message, and never the key.
        let wrong = OnCallClients::new(
            reqwest::Client::new(),
            OnCallConfig {
                opsgenie: Some(provider("og-wrong-key-0123456789")),
                ..OnCallConfig::default()
            },
        );
        match wrong.on_call("ops", &alice()).await {
            OnCall::Unknown { unknown } => {
                assert!(
                    unknown.starts_with("on-call source unavailable: Opsgenie answered 401"),
                    "{unknown}"
                );
                assert!(unknown.contains("Could not authenticate"), "{unknown}");
                assert!(!unknown.contains("og-wrong-key"), "{unknown}");
            }
            other => panic!("{other:?}"),
        }
        // Not cached: the next question asks again.
        let before = calls.load(std::sync::atomic::Ordering::SeqCst);
        let _ = wrong.on_call("ops", &alice()).await;
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), before + 1);
    }

    #[test]
    fn schedules_go_to_the_provider_they_name_and_keys_never_show() {
        let p = Provider {
            url: Url::parse("http://127.0.0.1:1").unwrap(),
            key: SecretString::from("a-key-that-is-secret-123"),
        };
        let both = OnCallConfig {
            pagerduty: Some(p.clone()),
            opsgenie: Some(p.clone()),
            users: BTreeMap::new(),
        };
        assert_eq!(route(&both, "PSCHED1").unwrap().0, "PagerDuty");
        assert_eq!(route(&both, "opsgenie:ops").unwrap().2, "ops");
        let only_og = OnCallConfig {
            opsgenie: Some(p.clone()),
            ..OnCallConfig::default()
        };
        assert_eq!(route(&only_og, "ops").unwrap().0, "Opsgenie");
        assert!(route(&only_og, "pagerduty:P1").unwrap_err().contains("not configured"));
        assert!(!format!("{both:?}").contains("a-key-that-is-secret-123"));
    }
}
