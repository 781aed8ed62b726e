//! Who is calling: a person's Rancher token is checked against the service's own Rancher (domain and CA from the
//! service's connection), and the user it belongs to is looked up with the service account (they must exist and
//! be enabled). Only the identity is kept, in memory, keyed by a SHA-256 of the token, for a short time; a token
//! Rancher refused is remembered (by the same hash) for a few seconds, so a flood of bad tokens is not a flood of
//! Rancher calls.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rancher_api::ExposeSecret;
use rancher_approval::Principal;
use rancher_auth::{BearerToken, Connection, RetryPolicy};
use rancher_workflows::Session;
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::metrics::Metrics;

/// A person as Rancher knows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// Their Rancher principal (id, username, groups).
    pub principal: Principal,
    /// Whether they hold the `admin` global role.
    pub is_admin: bool,
}

impl Person {
    /// Username, else id.
    pub fn who(&self) -> String {
        self.principal
            .username
            .clone()
            .unwrap_or_else(|| self.principal.id.clone())
    }

    /// A session that speaks for this person but calls Rancher as the service account: the runner takes the
    /// caller's identity from it (decisions, eligibility) and looks server facts up (admins, users) with the
    /// service's rights.
    pub fn acting_through(&self, service: &Session) -> Session {
        Session {
            client: service.client.clone(),
            version: service.version,
            server: service.server.clone(),
            principal: self.principal.clone(),
            is_admin: self.is_admin,
        }
    }
}

/// The person must still exist in Rancher and be enabled, as the service account sees them (Rancher 2.x; 1.x
/// refuses a disabled account's tokens itself).
async fn check_user(service: &Session, person: &Person) -> Result<(), ApiError> {
    if service.is_legacy() {
        return Ok(());
    }
    let user = service
        .client
        .send(&rancher_api::requests::V3UsersGet::new(person.principal.id.clone()))
        .await;
    match user {
        Ok(u) if u.enabled == Some(false) => Err(ApiError::unauthorized(format!(
            "the Rancher user {} is disabled; ask a Rancher admin",
            person.who()
        ))),
        Ok(_) => Ok(()),
        Err(e) if e.status() == Some(404) => Err(ApiError::unauthorized(format!(
            "the Rancher user {} no longer exists",
            person.who()
        ))),
        Err(e) => Err(ApiError::new(
            axum::http::StatusCode::BAD_GATEWAY,
            format!(
                "could not check the Rancher user {} with the service account: {}",
                person.who(),
                crate::error::chain(&e)
            ),
        )),
    }
}

/// Opens sessions for people's tokens against the service's Rancher, and caches who a token belongs to.
pub struct Identities {
    rancher: Connection,
    retry: RetryPolicy,
    ttl: Duration,
    cache: Mutex<HashMap<[u8; 32], (Person, Instant)>>,
    /// Tokens Rancher refused lately, by hash.
    refused: Mutex<HashMap<[u8; 32], Instant>>,
}

/// How long a refused token is answered from memory.
const REFUSED_FOR: Duration = Duration::from_secs(10);
/// Refused tokens remembered at most (older ones are dropped first; all when full).
const REFUSED_KEPT: usize = 10_000;

fn refused_token() -> ApiError {
    ApiError::unauthorized(
        "Rancher refused this token (expired, revoked or unknown); sign in again with a valid API token",
    )
}

impl std::fmt::Debug for Identities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identities")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

fn key(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Identities {
    /// Identities checked against `rancher`'s domain and CA (its token is not used here).
    pub fn new(rancher: Connection, retry: RetryPolicy, ttl: Duration) -> Self {
        Identities {
            rancher,
            retry,
            ttl,
            cache: Mutex::new(HashMap::new()),
            refused: Mutex::new(HashMap::new()),
        }
    }

    /// Parses a token as a person pasted or sent it (401 naming the mistake, never echoing it).
    pub fn parse_token(text: &str) -> Result<BearerToken, ApiError> {
        BearerToken::parse(text.trim())
            .map_err(|e| ApiError::unauthorized(format!("the bearer token is not a Rancher API token: {e}")))
    }

    /// A session opened with the person's own token (their own Rancher rights), for runs that need no approval.
    pub async fn open(&self, token: &BearerToken, metrics: &Metrics) -> Result<Session, ApiError> {
        self.open_as(token, metrics, false).await
    }

    /// A session with the person's own token that knows only the server's version (see
    /// [`Session::open_for_reads`]): for a list, which reads with the caller's rights and records nothing.
    pub async fn open_for_reads(&self, token: &BearerToken, metrics: &Metrics) -> Result<Session, ApiError> {
        self.open_as(token, metrics, true).await
    }

    async fn open_as(&self, token: &BearerToken, metrics: &Metrics, reads: bool) -> Result<Session, ApiError> {
        let conn = Connection::new(self.rancher.domain().clone(), token.clone()).with_ca(self.rancher.ca().cloned());
        let client = conn
            .client_builder()
            .and_then(|b| {
                Ok(b.retry_policy(self.retry.clone())
                    .user_agent("rancher-access-server")
                    .observer(metrics.call_observer())
                    .build()?)
            })
            .map_err(|e| ApiError::internal(format!("cannot build a Rancher client: {e}")))?;
        let opened = if reads {
            Session::open_for_reads(client).await
        } else {
            Session::open(client).await
        };
        opened.map_err(|e| match &e {
            rancher_workflows::Error::Api(a) if a.is_unauthorized() || a.is_forbidden() => refused_token(),
            _ => ApiError::new(
                axum::http::StatusCode::BAD_GATEWAY,
                format!(
                    "could not learn who this token belongs to from Rancher: {}",
                    crate::error::chain(&e)
                ),
            ),
        })
    }

    /// Who the token belongs to, when resolved in the last `ttl` (no Rancher call).
    pub fn cached(&self, token: &BearerToken) -> Option<Person> {
        let k = key(token.secret().expose_secret());
        let cache = self.cache.lock().ok()?;
        cache
            .get(&k)
            .filter(|(_, at)| at.elapsed() < self.ttl)
            .map(|(p, _)| p.clone())
    }

    /// Whether an answer for this token is at hand without asking Rancher: resolved in the last `ttl`, or
    /// refused in the last few seconds.
    pub fn known(&self, token: &BearerToken) -> bool {
        if self.cached(token).is_some() {
            return true;
        }
        let k = key(token.secret().expose_secret());
        self.refused
            .lock()
            .is_ok_and(|r| r.get(&k).is_some_and(|at| at.elapsed() < REFUSED_FOR))
    }

    /// Who the token belongs to now: from the cache when resolved in the last `ttl` (unless `fresh`), else from
    /// Rancher with the token itself (identity, groups, admin status), then checked with `service` (the service
    /// account): the user must still exist and be enabled. A token refused lately is refused again from memory.
    pub async fn resolve(
        &self,
        token: &BearerToken,
        service: &Session,
        metrics: &Metrics,
        fresh: bool,
    ) -> Result<Person, ApiError> {
        Ok(self.resolve_with_session(token, service, metrics, fresh).await?.0)
    }

    /// [`Identities::resolve`], with the session opened to learn who the token belongs to when it was opened now
    /// (`None` when the person came from the cache): a request reuses it rather than opening another. The session
    /// is never cached: it holds the person's token.
    pub async fn resolve_with_session(
        &self,
        token: &BearerToken,
        service: &Session,
        metrics: &Metrics,
        fresh: bool,
    ) -> Result<(Person, Option<Session>), ApiError> {
        let k = key(token.secret().expose_secret());
        if !fresh {
            if let Some(p) = self.cached(token) {
                return Ok((p, None));
            }
        }
        if self
            .refused
            .lock()
            .map_err(|_| ApiError::internal("identity cache poisoned"))?
            .get(&k)
            .is_some_and(|at| at.elapsed() < REFUSED_FOR)
        {
            return Err(refused_token());
        }
        let (person, session) = match self.open(token, metrics).await {
            Ok(session) => (
                Person {
                    principal: session.principal.clone(),
                    is_admin: session.is_admin,
                },
                session,
            ),
            Err(e) => {
                if e.status == axum::http::StatusCode::UNAUTHORIZED {
                    self.remember_refused(k);
                }
                return Err(e);
            }
        };
        if let Err(e) = check_user(service, &person).await {
            if let Ok(mut cache) = self.cache.lock() {
                cache.remove(&k);
            }
            return Err(e);
        }
        let mut cache = self
            .cache
            .lock()
            .map_err(|_| ApiError::internal("identity cache poisoned"))?;
        let ttl = self.ttl;
        cache.retain(|_, (_, at)| at.elapsed() < ttl);
        cache.insert(k, (person.clone(), Instant::now()));
        Ok((person, Some(session)))
    }

    fn remember_refused(&self, k: [u8; 32]) {
        if let Ok(mut refused) = self.refused.lock() {
            refused.retain(|_, at| at.elapsed() < REFUSED_FOR);
            if refused.len() >= REFUSED_KEPT {
                refused.clear();
            }
            refused.insert(k, Instant::now());
        }
    }

    /// Rancher's local login: user name and password give a session token; answers it with who it belongs to.
    /// The web session keeps the token (sealed) to re-check the person on every page, and logs it out when the
    /// session ends ([`Identities::logout`]).
    /// `ttl`: how long Rancher should keep the session token at most (the page session's absolute limit).
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        ttl: Duration,
        service: &Session,
        metrics: &Metrics,
    ) -> Result<(Person, BearerToken), ApiError> {
        let mut b = rancher_api::Client::builder(self.rancher.domain().to_string())
            .retry_policy(self.retry.clone())
            .user_agent("rancher-access-server")
            .observer(metrics.call_observer());
        let ca = match self.rancher.ca() {
            Some(ca) => Some(
                ca.load()
                    .map_err(|e| ApiError::internal(format!("cannot read the Rancher CA: {e}")))?,
            ),
            None => None,
        };
        if let Some(pem) = &ca {
            b = b.ca_pem(pem.clone());
        }
        let client = b
            .build()
            .map_err(|e| ApiError::internal(format!("cannot build a Rancher client: {e}")))?;
        let body = rancher_api::types::V3LoginInput {
            username: Some(username.to_string()),
            password: Some(password.to_string()),
            response_type: Some("json".into()),
            description: Some("rancher-access approvals page sign-in".into()),
            // Rancher ends the session token itself by the page session's absolute limit, even if the page session
            // is never visited again (and so never logged out).
            extra: [("ttl".to_string(), serde_json::json!(ttl.as_millis() as u64))]
                .into_iter()
                .collect(),
        };
        let answer = client
            .send(&rancher_api::requests::PublicLocalLoginCreate::new(body))
            .await;
        let answer = answer.map_err(|e| {
            if e.is_unauthorized() || e.is_forbidden() || e.status() == Some(422) {
                ApiError::unauthorized("Rancher refused this user name and password")
            } else {
                ApiError::new(
                    axum::http::StatusCode::BAD_GATEWAY,
                    format!("Rancher's local login failed: {}", crate::error::chain(&e)),
                )
            }
        })?;
        let token_text = answer.token.as_deref().ok_or_else(|| {
            ApiError::new(
                axum::http::StatusCode::BAD_GATEWAY,
                "Rancher's login answer held no token",
            )
        })?;
        let token = BearerToken::parse(token_text).map_err(|_| {
            ApiError::new(
                axum::http::StatusCode::BAD_GATEWAY,
                "Rancher's login answer held an unreadable token",
            )
        })?;
        match self.resolve(&token, service, metrics, true).await {
            Ok(person) => Ok((person, token)),
            Err(e) => {
                self.logout(&token).await;
                Err(e)
            }
        }
    }

    /// Ends a session token of Rancher's local login (`v3.tokens.logout`): when the web session it was made for
    /// ends (sign-out, expiry, or the person is no longer known).
    pub async fn logout(&self, token: &BearerToken) {
        let conn = Connection::new(self.rancher.domain().clone(), token.clone()).with_ca(self.rancher.ca().cloned());
        let client = match conn.client_builder().and_then(|b| {
            Ok(b.timeout(Duration::from_secs(10))
                .user_agent("rancher-access-server")
                .build()?)
        }) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(
                    "cannot log the sign-in session out ({}); it expires on its own",
                    crate::error::chain(&e)
                );
                return;
            }
        };
        if let Err(e) = client.send(&rancher_api::requests::V3TokensLogout::new()).await {
            tracing::warn!(
                "Rancher did not log the sign-in session out ({}); it expires on its own",
                crate::error::chain(&e)
            );
        }
    }
}
