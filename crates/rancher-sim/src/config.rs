//! Simulator configuration: which Rancher generation to play, how much data to seed, which faults to inject.

use std::time::Duration;

/// The Rancher server generation the simulator plays.
///
/// The generation decides which API surfaces and RK-API paths exist: 1.6 serves only the legacy `/v1`
/// access-control API; 2.8 serves norman `/v3` but no RK-API kinds; 2.11 adds the management.cattle.io
/// kinds except users; 2.12 adds ext.cattle.io tokens/kubeconfigs and audit policies; 2.13 adds users and
/// the `/v1-public` login endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum RancherVersion {
    /// Rancher 1.6 (cattle): legacy `/v1` access control only.
    V1_6,
    /// Rancher 2.8: norman `/v3` only.
    V2_8,
    /// Rancher 2.11: RK-API management kinds (no users).
    V2_11,
    /// Rancher 2.12: adds ext tokens, kubeconfigs and audit policies.
    V2_12,
    /// Rancher 2.13 (default): adds RK-API users and `/v1-public`.
    #[default]
    V2_13,
}

impl RancherVersion {
    /// The full version string the server reports, e.g. `v2.13.1`.
    pub fn full(self) -> &'static str {
        match self {
            RancherVersion::V1_6 => "v1.6.30",
            RancherVersion::V2_8 => "v2.8.5",
            RancherVersion::V2_11 => "v2.11.3",
            RancherVersion::V2_12 => "v2.12.2",
            RancherVersion::V2_13 => "v2.13.1",
        }
    }

    /// `(major, minor)` of this generation.
    pub fn major_minor(self) -> (u32, u32) {
        match self {
            RancherVersion::V1_6 => (1, 6),
            RancherVersion::V2_8 => (2, 8),
            RancherVersion::V2_11 => (2, 11),
            RancherVersion::V2_12 => (2, 12),
            RancherVersion::V2_13 => (2, 13),
        }
    }

    /// True when this generation is at least `major.minor`.
    pub fn at_least(self, major: u32, minor: u32) -> bool {
        self.major_minor() >= (major, minor)
    }

    /// True for the 1.x (cattle) generation.
    pub fn is_legacy(self) -> bool {
        self == RancherVersion::V1_6
    }

    /// Parses `"2.13"`, `"v2.13"`, `"2.13.1"`, `"1.6"`.
    pub fn parse(text: &str) -> Option<RancherVersion> {
        let t = text.trim().trim_start_matches('v');
        let mut parts = t.split('.');
        let major: u32 = parts.next()?.parse().ok()?;
        let minor: u32 = parts.next()?.parse().ok()?;
        Some(match (major, minor) {
            (1, 6) => RancherVersion::V1_6,
            (2, 8) => RancherVersion::V2_8,
            (2, 11) => RancherVersion::V2_11,
            (2, 12) => RancherVersion::V2_12,
            (2, 13) => RancherVersion::V2_13,
            _ => return None,
        })
    }
}

/// Faults injected into HTTP handling (never into the handle's inspection methods).
///
/// Shares are probabilities in `0.0..=1.0`, drawn from an RNG seeded from [`SimConfig::seed`], so a run
/// with the same requests in the same order sees the same faults.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Faults {
    /// Latency added before every request is answered.
    pub latency: Duration,
    /// Share of requests answered `429 Too Many Requests` with `Retry-After`.
    pub rate_429: f64,
    /// The `Retry-After` value (seconds) sent with injected 429s.
    pub retry_after_secs: u64,
    /// Share of requests answered `500`.
    pub rate_500: f64,
    /// Share of requests answered `503`.
    pub rate_503: f64,
    /// Share of writes whose connection is dropped BEFORE the write is applied.
    pub drop_before_write: f64,
    /// Share of writes whose connection is dropped AFTER the write was applied (no response sent).
    pub drop_after_write: f64,
    /// Share of RK-API `continue` requests answered `410 Expired`.
    pub continue_expire_rate: f64,
    /// RK-API continue tokens older than this answer `410 Expired`.
    pub continue_expire_after: Option<Duration>,
    /// RK-API continue tokens that already served this many pages answer `410 Expired`.
    pub continue_expire_after_pages: Option<u32>,
    /// How often a watch that asked for bookmarks gets one (`None`: every 60 s, the apiserver's cadence).
    pub watch_bookmark_interval: Option<Duration>,
}

impl Faults {
    /// No faults at all.
    pub fn none() -> Faults {
        Faults::default()
    }

    /// A shorthand: `share` of requests split evenly between 429, 500 and 503, plus the same share of
    /// dropped connections on writes (half before, half after the write was applied).
    pub fn flaky(share: f64) -> Faults {
        Faults {
            rate_429: share / 3.0,
            retry_after_secs: 1,
            rate_500: share / 3.0,
            rate_503: share / 3.0,
            drop_before_write: share / 2.0,
            drop_after_write: share / 2.0,
            ..Faults::default()
        }
    }

    /// Sets the added latency.
    pub fn with_latency(mut self, latency: Duration) -> Faults {
        self.latency = latency;
        self
    }
}

/// How to start a [`crate::Simulator`]. `Default` plays Rancher 2.13 with seed 0 on any free port.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub(crate) version: RancherVersion,
    pub(crate) seed: u64,
    pub(crate) port: u16,
    pub(crate) users: usize,
    pub(crate) bindings: usize,
    pub(crate) mixed_bindings: bool,
    pub(crate) tokens: usize,
    pub(crate) faults: Faults,
    pub(crate) reject_duplicate_bindings: bool,
    pub(crate) deletion_linger: Duration,
    pub(crate) openssl_style_certificate: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            version: RancherVersion::V2_13,
            seed: 0,
            port: 0,
            users: 0,
            bindings: 0,
            mixed_bindings: false,
            tokens: 0,
            faults: Faults::default(),
            reject_duplicate_bindings: false,
            deletion_linger: Duration::from_millis(200),
            openssl_style_certificate: false,
        }
    }
}

impl SimConfig {
    /// A default configuration (Rancher 2.13, seed 0, any free port).
    pub fn new() -> SimConfig {
        SimConfig::default()
    }
    /// The Rancher generation to play.
    pub fn rancher_version(mut self, version: RancherVersion) -> Self {
        self.version = version;
        self
    }
    /// Extra standard users to seed (`user00001`, ...), on top of the named ones.
    pub fn users(mut self, n: usize) -> Self {
        self.users = n;
        self
    }
    /// Extra global role bindings to seed (role `user`, spread over the seeded users).
    pub fn bindings(mut self, n: usize) -> Self {
        self.bindings = n;
        self
    }
    /// Spreads the [`SimConfig::bindings`] as a large installation's access looks: a third global role bindings
    /// (`user`), a third cluster role template bindings on the downstream cluster (`cluster-member`), a third project
    /// role template bindings in its Default project (`project-member`); every tenth names a group
    /// (`activedirectory_group://CN=Team NNNNN,...`) instead of a user. With it, every seeded user belongs to one
    /// team of ten through its UserAttribute, as an Active Directory login or refresh records it.
    pub fn mixed_bindings(mut self) -> Self {
        self.mixed_bindings = true;
        self
    }
    /// Extra tokens to seed, spread over the users (a few hold many): login sessions, API keys (some never
    /// expiring, some cluster-scoped), kubeconfig tokens, expired ones not yet purged, a spread of last-use times;
    /// on 2.12+ one in ten is an `ext.cattle.io` token. Listable by an admin on the RK-API, deletable.
    pub fn tokens(mut self, n: usize) -> Self {
        self.tokens = n;
        self
    }
    /// The seed for ids, secrets and fault decisions.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    /// The loopback port to listen on (0 = any free port).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }
    /// Faults to inject from the start.
    pub fn faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }
    /// Reject a second identical CRTB/PRTB with `409 Conflict` (Rancher 2.14 webhook behaviour).
    /// Off by default: the generations we play (<= 2.13) accept duplicates.
    pub fn reject_duplicate_bindings(mut self, on: bool) -> Self {
        self.reject_duplicate_bindings = on;
        self
    }
    /// How long a deleted object with a finalizer (global roles and bindings, role templates, users, projects,
    /// CRTBs, PRTBs) stays listed with a `deletionTimestamp`, as it does on Rancher until its controller removes the
    /// finalizer. Default 200 ms; zero removes at once.
    pub fn deletion_linger(mut self, linger: Duration) -> Self {
        self.deletion_linger = linger;
        self
    }
    /// Serve a self-signed `CA:TRUE` certificate as `openssl req -x509` makes (as many self-hosted Rancher installs
    /// do) instead of a leaf signed by a throwaway CA; [`crate::SimHandle::ca_pem`] is then that certificate.
    pub fn openssl_style_certificate(mut self, on: bool) -> Self {
        self.openssl_style_certificate = on;
        self
    }
    /// The configured Rancher generation.
    pub fn version(&self) -> RancherVersion {
        self.version
    }
}
