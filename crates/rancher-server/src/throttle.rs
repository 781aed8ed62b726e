//! Throttling of what an unauthenticated client can make the service ask Rancher: sign-in attempts per client
//! and per user name, and bearer-token checks that miss the identity cache per client. Each limit is a GCRA
//! bucket (the `governor` crate): a burst, then one more every period; a refusal is a 429 with `Retry-After`.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use axum::http::HeaderMap;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::error::ApiError;

/// The peer address of a connection, set on every request by the listener.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer(pub IpAddr);

/// How many attempts a client may make at once, and how often one more comes back.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    /// Attempts allowed in a burst.
    pub burst: u32,
    /// One more attempt every this long.
    pub every: Duration,
}

impl Limit {
    fn quota(self) -> Quota {
        let burst = NonZeroU32::new(self.burst.max(1)).unwrap_or(NonZeroU32::MIN);
        Quota::with_period(self.every.max(Duration::from_millis(1)))
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(burst)
    }
}

/// The service's limits.
pub(crate) struct Throttle {
    sign_ins: DefaultKeyedRateLimiter<IpAddr>,
    names: DefaultKeyedRateLimiter<String>,
    tokens: DefaultKeyedRateLimiter<IpAddr>,
    /// Take the client from `X-Forwarded-For` when the peer is a loopback proxy.
    behind_proxy: bool,
}

/// Keyed buckets kept before forgetting the idle ones.
const KEPT: usize = 10_000;

impl Throttle {
    /// `sign_in` limits sign-in attempts per client and per user name; `token` limits bearer-token checks that
    /// reach Rancher, per client. `behind_proxy`: the service is reached through a reverse proxy on loopback,
    /// whose `X-Forwarded-For` names the client.
    pub(crate) fn new(sign_in: Limit, token: Limit, behind_proxy: bool) -> Self {
        Throttle {
            sign_ins: RateLimiter::keyed(sign_in.quota()),
            names: RateLimiter::keyed(sign_in.quota()),
            tokens: RateLimiter::keyed(token.quota()),
            behind_proxy,
        }
    }

    /// Who the client is: the peer, or behind a loopback proxy the last address it appended to
    /// `X-Forwarded-For` (the one the proxy saw; earlier ones are the client's own claims).
    pub(crate) fn client(&self, peer: Option<Peer>, headers: &HeaderMap) -> IpAddr {
        let ip = peer.map(|p| p.0).unwrap_or(IpAddr::from([0, 0, 0, 0]));
        if self.behind_proxy && ip.is_loopback() {
            let forwarded = headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .last();
            if let Some(f) = forwarded.and_then(|f| f.trim().parse::<IpAddr>().ok()) {
                return f;
            }
        }
        ip
    }

    /// One sign-in attempt by `client` for `name` (the user name typed, if any).
    pub(crate) fn sign_in(&self, client: IpAddr, name: Option<&str>) -> Result<(), ApiError> {
        check(&self.sign_ins, &client, "too many sign-in attempts from your address")?;
        if let Some(n) = name {
            check(
                &self.names,
                &n.to_lowercase(),
                "too many sign-in attempts for this user name",
            )?;
        }
        Ok(())
    }

    /// One bearer-token check by `client` that Rancher must answer (the identity cache did not know the token).
    pub(crate) fn token_check(&self, client: IpAddr) -> Result<(), ApiError> {
        check(&self.tokens, &client, "too many token checks from your address")
    }
}

fn check<K: std::hash::Hash + Eq + Clone>(
    limiter: &DefaultKeyedRateLimiter<K>,
    key: &K,
    what: &str,
) -> Result<(), ApiError> {
    if limiter.len() > KEPT {
        limiter.retain_recent();
    }
    limiter.check_key(key).map_err(|not_until| {
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        ApiError::too_many(format!("{what}; wait {}s and try again", wait.as_secs().max(1)), wait)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_429_with_a_wait_and_other_clients_unaffected() {
        let t = Throttle::new(
            Limit {
                burst: 3,
                every: Duration::from_secs(60),
            },
            Limit {
                burst: 2,
                every: Duration::from_secs(60),
            },
            false,
        );
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..3 {
            t.sign_in(a, Some("admin")).unwrap();
        }
        let e = t.sign_in(a, None).unwrap_err();
        assert_eq!(e.status.as_u16(), 429);
        assert!(e.retry_after.unwrap() >= 1 && e.retry_after.unwrap() <= 60, "{e:?}");
        // Another client is not limited by the first one's attempts, but the user name is.
        t.sign_in(b, None).unwrap();
        assert_eq!(t.sign_in(b, Some("ADMIN")).unwrap_err().status.as_u16(), 429);
        t.token_check(a).unwrap();
        t.token_check(a).unwrap();
        assert!(t.token_check(a).is_err() && t.token_check(b).is_ok());
    }

    #[test]
    fn the_forwarded_client_counts_only_behind_a_loopback_proxy() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "203.0.113.9, 198.51.100.7".parse().unwrap());
        let lo = Some(Peer("127.0.0.1".parse().unwrap()));
        let far = Some(Peer("192.0.2.1".parse().unwrap()));
        let limit = Limit {
            burst: 1,
            every: Duration::from_secs(1),
        };
        assert_eq!(
            Throttle::new(limit, limit, true).client(lo, &h).to_string(),
            "198.51.100.7"
        );
        assert_eq!(
            Throttle::new(limit, limit, true).client(far, &h).to_string(),
            "192.0.2.1"
        );
        assert_eq!(
            Throttle::new(limit, limit, false).client(lo, &h).to_string(),
            "127.0.0.1"
        );
    }
}
