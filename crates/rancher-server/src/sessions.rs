//! Web sign-ins, kept in the approval store so that any replica serves any signed-in person (no sticky sessions).
//!
//! A session is bound to the person's own Rancher token (pasted on the sign-in form, or the session token of
//! Rancher's local login), which every page and every decision re-resolves with Rancher. The store never holds
//! the cookie nor a usable token: the record's key is a SHA-256 of the cookie under one label, and the record is
//! sealed (ChaCha20-Poly1305) under a key derived from the cookie under another label, its key as associated
//! data. Whoever can read or write the store can delete sessions, but cannot read the tokens, forge a session,
//! or move one record to another key. Sessions end after `idle` without a page and at `absolute` after sign-in.

use std::sync::Arc;
use std::time::Duration;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use chrono::{DateTime, Utc};
use rancher_api::ExposeSecret;
use rancher_approval::Store;
use rancher_auth::BearerToken;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::Clock;
use crate::error::ApiError;

/// The store namespace of web sessions.
pub(crate) const NAMESPACE: &str = "web-session";

/// A one-shot message shown after an action.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Flash {
    pub(crate) kind: String,
    pub(crate) text: String,
}

impl Flash {
    pub(crate) fn ok(text: impl Into<String>) -> Self {
        Flash {
            kind: "ok".into(),
            text: text.into(),
        }
    }

    pub(crate) fn error(text: impl Into<String>) -> Self {
        Flash {
            kind: "error".into(),
            text: text.into(),
        }
    }
}

/// What a session holds, sealed.
#[derive(Serialize, Deserialize)]
struct Sealed {
    token: String,
    /// The token came from Rancher's local login: log it out when the session ends.
    login: bool,
    csrf: String,
    created: DateTime<Utc>,
    seen: DateTime<Utc>,
    #[serde(default)]
    flash: Option<Flash>,
}

impl Drop for Sealed {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.token);
    }
}

/// What the store holds: the nonce and the sealed session, hex.
#[derive(Serialize, Deserialize)]
struct Record {
    v: u8,
    nonce: String,
    sealed: String,
}

/// A live session, as a page sees it.
pub(crate) struct Live {
    pub(crate) cookie: String,
    pub(crate) token: BearerToken,
    pub(crate) csrf: String,
    pub(crate) flash: Option<Flash>,
}

/// A session that ended: its token, to log out when it came from Rancher's local login.
pub(crate) struct Ended {
    pub(crate) token: Option<BearerToken>,
}

/// Web sessions in the store.
pub(crate) struct WebSessions {
    store: Arc<dyn Store>,
    /// Longest time without a page.
    pub(crate) idle: Duration,
    /// Longest time after sign-in.
    pub(crate) absolute: Duration,
    clock: Clock,
}

/// A `last seen` newer than this is not written again (a page is a read; the idle timeout is in minutes).
const SEEN_GRANULARITY: chrono::Duration = chrono::Duration::seconds(60);

fn labelled(label: &str, cookie: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(label.as_bytes());
    h.update([0u8]);
    h.update(cookie.as_bytes());
    h.finalize().into()
}

/// The record's key in the store.
fn slot(cookie: &str) -> String {
    hex::encode(labelled("rancher-access/web-session/id/v1", cookie))
}

fn cipher(cookie: &str) -> ChaCha20Poly1305 {
    ChaCha20Poly1305::new(Key::from_slice(&labelled("rancher-access/web-session/key/v1", cookie)))
}

/// 32 random bytes, hex.
pub(crate) fn random_hex() -> String {
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// A cookie as this service makes them: 64 hex digits (anything else is no session).
fn well_formed(cookie: &str) -> bool {
    cookie.len() == 64 && cookie.bytes().all(|b| b.is_ascii_hexdigit())
}

fn seal(cookie: &str, s: &Sealed) -> Result<String, ApiError> {
    let plain =
        zeroizing(serde_json::to_vec(s).map_err(|e| ApiError::internal(format!("cannot encode a web session: {e}")))?);
    let mut nonce = [0u8; 12];
    rand::thread_rng().fill_bytes(&mut nonce);
    let key = slot(cookie);
    let sealed = cipher(cookie)
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: &plain,
                aad: key.as_bytes(),
            },
        )
        .map_err(|_| ApiError::internal("cannot seal a web session"))?;
    serde_json::to_string(&Record {
        v: 1,
        nonce: hex::encode(nonce),
        sealed: hex::encode(sealed),
    })
    .map_err(|e| ApiError::internal(format!("cannot encode a web session: {e}")))
}

/// `None` when the record does not open with this cookie (altered, moved, or not this service's).
fn open(cookie: &str, record: &str) -> Option<Sealed> {
    let r: Record = serde_json::from_str(record).ok()?;
    let nonce = hex::decode(&r.nonce).ok().filter(|n| n.len() == 12)?;
    let sealed = hex::decode(&r.sealed).ok()?;
    let key = slot(cookie);
    let plain = zeroizing(
        cipher(cookie)
            .decrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &sealed,
                    aad: key.as_bytes(),
                },
            )
            .ok()?,
    );
    serde_json::from_slice(&plain).ok()
}

fn zeroizing(v: Vec<u8>) -> zeroize::Zeroizing<Vec<u8>> {
    zeroize::Zeroizing::new(v)
}

impl WebSessions {
    pub(crate) fn new(store: Arc<dyn Store>, idle: Duration, absolute: Duration, clock: Clock) -> Self {
        WebSessions {
            store,
            idle,
            absolute,
            clock,
        }
    }

    fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    fn ends_at(&self, s: &Sealed) -> DateTime<Utc> {
        let idle = s.seen + chrono::Duration::from_std(self.idle).unwrap_or(chrono::Duration::MAX);
        let absolute = s.created + chrono::Duration::from_std(self.absolute).unwrap_or(chrono::Duration::MAX);
        idle.min(absolute)
    }

    async fn put(&self, cookie: &str, s: &Sealed) -> Result<(), ApiError> {
        let record = seal(cookie, s)?;
        let expires = self.ends_at(s);
        self.store
            .state_put(NAMESPACE, &slot(cookie), &record, Some(expires))
            .await
            .map_err(ApiError::from)
    }

    /// Opens a session for `token` (`login`: a session token of Rancher's local login, logged out when the session
    /// ends) with a first flash; answers the cookie.
    pub(crate) async fn create(&self, token: &BearerToken, login: bool, flash: Flash) -> Result<String, ApiError> {
        let cookie = random_hex();
        let now = self.now();
        let s = Sealed {
            token: token.secret().expose_secret().to_string(),
            login,
            csrf: random_hex(),
            created: now,
            seen: now,
            flash: Some(flash),
        };
        self.put(&cookie, &s).await?;
        Ok(cookie)
    }

    /// The live session of `cookie` (its flash taken when `take_flash`), `Ok(Err(ended))` when it just ended by
    /// the idle or absolute limit, `Ok(Ok(None))` when there is none.
    pub(crate) async fn get(&self, cookie: &str, take_flash: bool) -> Result<Result<Option<Live>, Ended>, ApiError> {
        if !well_formed(cookie) {
            return Ok(Ok(None));
        }
        let now = self.now();
        let Some(record) = self
            .store
            .state_get(NAMESPACE, &slot(cookie), now)
            .await
            .map_err(ApiError::from)?
        else {
            return Ok(Ok(None));
        };
        let Some(mut s) = open(cookie, &record) else {
            tracing::warn!("a web session record did not open with its cookie (altered in the store?); it is dropped");
            self.store
                .state_delete(NAMESPACE, &slot(cookie))
                .await
                .map_err(ApiError::from)?;
            return Ok(Ok(None));
        };
        if self.ends_at(&s) <= now {
            self.store
                .state_delete(NAMESPACE, &slot(cookie))
                .await
                .map_err(ApiError::from)?;
            return Ok(Err(Ended { token: ended_token(&s) }));
        }
        let flash = if take_flash { s.flash.take() } else { None };
        if flash.is_some() || now - s.seen >= SEEN_GRANULARITY {
            s.seen = now;
            self.put(cookie, &s).await?;
        }
        let token =
            BearerToken::parse(&s.token).map_err(|_| ApiError::internal("a web session holds an unreadable token"))?;
        Ok(Ok(Some(Live {
            cookie: cookie.to_string(),
            token,
            csrf: s.csrf.clone(),
            flash,
        })))
    }

    /// Sets the flash the next page shows.
    pub(crate) async fn flash(&self, cookie: &str, flash: Flash) -> Result<(), ApiError> {
        let now = self.now();
        if let Some(mut s) = self
            .store
            .state_get(NAMESPACE, &slot(cookie), now)
            .await
            .map_err(ApiError::from)?
            .and_then(|r| open(cookie, &r))
        {
            s.flash = Some(flash);
            self.put(cookie, &s).await?;
        }
        Ok(())
    }

    /// Ends the session of `cookie` (sign-out, or Rancher no longer knows the person).
    pub(crate) async fn end(&self, cookie: &str) -> Result<Ended, ApiError> {
        if !well_formed(cookie) {
            return Ok(Ended { token: None });
        }
        let now = self.now();
        let s = self
            .store
            .state_get(NAMESPACE, &slot(cookie), now)
            .await
            .map_err(ApiError::from)?
            .and_then(|r| open(cookie, &r));
        self.store
            .state_delete(NAMESPACE, &slot(cookie))
            .await
            .map_err(ApiError::from)?;
        Ok(Ended {
            token: s.as_ref().and_then(ended_token),
        })
    }
}

/// The token to log out when a session ends: only one from Rancher's local login (a pasted API token is the
/// person's own to keep).
fn ended_token(s: &Sealed) -> Option<BearerToken> {
    s.login.then(|| BearerToken::parse(&s.token).ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealed() -> Sealed {
        Sealed {
            token: "token-abcde:secretsecretsecret".into(),
            login: false,
            csrf: "c".into(),
            created: Utc::now(),
            seen: Utc::now(),
            flash: None,
        }
    }

    #[test]
    fn a_record_opens_only_with_its_cookie_and_in_its_own_slot() {
        let (a, b) = (random_hex(), random_hex());
        let rec = seal(&a, &sealed()).unwrap();
        assert!(
            !rec.contains("secretsecret") && !rec.contains(&a) && !rec.contains(&slot(&a)),
            "{rec}"
        );
        assert_eq!(open(&a, &rec).unwrap().token, "token-abcde:secretsecretsecret");
        assert!(open(&b, &rec).is_none(), "another cookie does not open it");
        // Flipping one sealed byte breaks it.
        let mut r: Record = serde_json::from_str(&rec).unwrap();
        let mut bytes = hex::decode(&r.sealed).unwrap();
        bytes[0] ^= 1;
        r.sealed = hex::encode(bytes);
        assert!(open(&a, &serde_json::to_string(&r).unwrap()).is_none());
        assert_ne!(slot(&a), slot(&b));
        assert_ne!(
            slot(&a),
            hex::encode(labelled("rancher-access/web-session/key/v1", &a)),
            "the lookup key is not the sealing key"
        );
        assert!(well_formed(&a) && !well_formed("abc") && !well_formed(&"g".repeat(64)));
    }
}
