//! How a failed step of the connection test is diagnosed: from the API error and what the test knows (domain,
//! token, CA) to the [`Diagnosis`] with its cause and remedy. Apart from the diagnosis types, so that those sit
//! below the error type and this sits above the token and domain parsers.

use rancher_api::{ConnectFailure, Error as ApiError};

use crate::diagnosis::{Cause, Diagnosis};
use crate::domain::InstanceDomain;
use crate::token::{BearerToken, RANCHER_SECRET_LEN};

/// Context for turning an API error into a diagnosis.
pub(crate) struct Ctx<'a> {
    pub domain: &'a InstanceDomain,
    pub token: &'a BearerToken,
    pub has_ca: bool,
    /// What a previous successful test learnt about the token (expiry, scope), if anything.
    pub known_expiry: Option<chrono::DateTime<chrono::Utc>>,
    pub known_cluster: Option<&'a str>,
}

/// Diagnoses a failure to reach the server or a non-Rancher answer (any step). `None` for API refusals, which
/// each step judges itself.
pub(crate) fn transport(ctx: &Ctx<'_>, step: &'static str, e: &ApiError) -> Option<Diagnosis> {
    let d = ctx.domain;
    let host = d.host().trim_start_matches('[').trim_end_matches(']');
    let port = d.port().unwrap_or(443);
    let diag = match e {
        ApiError::Connect { failure, .. } => match failure.clone() {
            ConnectFailure::Dns => Diagnosis::new(
                Cause::DnsFailure,
                step,
                format!("The name `{host}` does not resolve."),
                "Check the spelling of the Instance Domain, and that this machine's DNS (or VPN) can resolve it: it is the host of the Rancher URL, e.g. `rancher.example.com`.",
            ),
            ConnectFailure::Refused => Diagnosis::new(
                Cause::ConnectionRefused,
                step,
                format!("`{host}` refused the connection on port {port}."),
                format!(
                    "Check the port (Rancher listens on 443 unless installed otherwise: write it as `{host}:<port>`) and that the Rancher server or its load balancer is running."
                ),
            ),
            ConnectFailure::UntrustedCertificate => Diagnosis::new(
                Cause::UntrustedCertificate,
                step,
                if ctx.has_ca {
                    format!("The certificate of `{d}` is not signed by the CA bundle given (nor by a system CA).")
                } else {
                    format!("The certificate of `{d}` is not signed by a trusted CA (a private CA or a self-signed certificate).")
                },
                format!(
                    "Give the server's CA bundle with the CA option (`--ca-cert <file.pem>` / RANCHER_CA_CERT); Rancher serves it at https://{d}/v3/settings/cacerts. Never turn off verification."
                ),
            ),
            ConnectFailure::WrongHostname => Diagnosis::new(
                Cause::WrongHostname,
                step,
                format!("The server's certificate is valid, but not for `{host}`."),
                "Use the host name the certificate was issued for (the one in Rancher's server-url setting, as in the browser's address bar), not an IP address or an alias.",
            ),
            ConnectFailure::ExpiredCertificate => Diagnosis::new(
                Cause::ExpiredCertificate,
                step,
                format!("The certificate of `{d}` has expired (or is not valid yet)."),
                "Renew the Rancher server's certificate (or check this machine's clock).",
            ),
            ConnectFailure::NotTls => Diagnosis::new(
                Cause::NotHttps,
                step,
                format!("`{d}` does not speak HTTPS (plain HTTP or another protocol answered)."),
                "Use the HTTPS address and port of Rancher; installs served over plain HTTP are not supported.",
            ),
            ConnectFailure::CaCertificateAsServer => Diagnosis::new(
                Cause::UntrustedCertificate,
                step,
                if ctx.has_ca {
                    format!("`{d}` serves a self-signed CA certificate (CA:TRUE, as `openssl req -x509` makes) as its own certificate, and it is not the certificate given with --ca-cert.")
                } else {
                    format!("`{d}` serves a self-signed CA certificate (CA:TRUE, as `openssl req -x509` makes) as its own certificate.")
                },
                format!(
                    "Give exactly that certificate with `--ca-cert <file.pem>` / RANCHER_CA_CERT (the one the server was set up with; `openssl s_client -connect {host}:{port} -showcerts` prints it), or serve a certificate issued by a CA. Never turn off verification."
                ),
            ),
            ConnectFailure::BadCertificate(why) => Diagnosis::new(
                Cause::UntrustedCertificate,
                step,
                format!("The certificate of `{d}` was refused: {why}."),
                "Fix the server's certificate (or give the CA bundle that issued it with --ca-cert); the refusal above names what is wrong with it.",
            ),
            ConnectFailure::Tls(msg) => Diagnosis::new(
                Cause::NotHttps,
                step,
                format!("The TLS handshake with `{d}` failed: {msg}."),
                "Use the HTTPS address and port of Rancher itself (not a proxy or another service).",
            ),
            other => Diagnosis::new(
                Cause::ConnectionFailed,
                step,
                format!("The connection to `{d}` failed: {other}."),
                "Check that the Instance Domain points at the Rancher server and that nothing (firewall, proxy) cuts the connection.",
            ),
        },
        ApiError::Timeout { after, .. } => Diagnosis::new(
            Cause::TimedOut,
            step,
            format!("`{d}` did not answer within {after:?}."),
            "Check that the Instance Domain and port are right and that a firewall or VPN does not silently drop the traffic.",
        ),
        ApiError::Transport { .. } => Diagnosis::new(
            Cause::ConnectionFailed,
            step,
            format!("The connection to `{d}` broke before an answer."),
            "Check that the Instance Domain points at Rancher itself and that no proxy cuts the connection.",
        ),
        ApiError::Decode { .. } | ApiError::TooLarge { .. } => not_rancher(step, d, "an answer that is not a Rancher API response"),
        ApiError::Api { server: rancher_api::ServerError::Unparsed { content_type, .. }, status, .. }
            if content_type.as_deref().is_some_and(|c| c.contains("html")) =>
        {
            not_rancher(step, d, &format!("an HTML page (HTTP {status})"))
        }
        ApiError::Config(msg) => Diagnosis::new(
            if ctx.has_ca { Cause::InvalidCaBundle } else { Cause::UntrustedCertificate },
            step,
            format!("No secure connection can be set up: {msg}."),
            "Give the server's CA bundle as a PEM file (the -----BEGIN CERTIFICATE----- blocks); Rancher serves it at /v3/settings/cacerts.",
        ),
        _ => return None,
    };
    Some(diag.with_detail(e))
}

pub(crate) fn not_rancher(step: &'static str, d: &InstanceDomain, what: &str) -> Diagnosis {
    Diagnosis::new(
        Cause::NotRancher,
        step,
        format!("`{d}` answered with {what}: it is not a Rancher API."),
        "Check the Instance Domain: it must be Rancher's own domain (the one of the Rancher UI), not a login portal, a proxy page or another service.",
    )
}

pub(crate) fn server_error(step: &'static str, d: &InstanceDomain, e: &ApiError) -> Diagnosis {
    let status = e.status().unwrap_or(0);
    Diagnosis::new(
        Cause::ServerError,
        step,
        format!("`{d}` answered with an error (HTTP {status})."),
        if status >= 500 {
            "The Rancher server (or a proxy in front of it) is failing: check its health and logs, then retry."
        } else {
            "The server refused a request a Rancher server accepts: check that the domain is Rancher's and its version is 2.x."
        },
    )
    .with_detail(e)
}

/// A 401 on an authenticated call: say what is known about why.
pub(crate) fn token_rejected(ctx: &Ctx<'_>, step: &'static str, e: &ApiError) -> Diagnosis {
    let t = ctx.token;
    let key = t.access_key();
    let message = e
        .server_error()
        .and_then(|s| s.message())
        .unwrap_or("")
        .to_ascii_lowercase();
    let now = chrono::Utc::now();
    const NO_SCOPE: &str = "create a new API key with Scope set to \"No Scope\" and paste its Bearer Token";
    const REPLACE: &str = "create a new API key (Account & API Keys) and paste its full Bearer Token";

    // What the server (older versions leak the reason) or an earlier test tells for sure.
    if message.contains("clusterid does not match")
        || message.contains("cluster")
        || ctx.known_cluster.is_some_and(|c| !c.is_empty())
    {
        let which = ctx
            .known_cluster
            .filter(|c| !c.is_empty())
            .map(|c| format!(" (to cluster `{c}`)"))
            .unwrap_or_default();
        return Diagnosis::new(
            Cause::ClusterScopedToken,
            step,
            format!(
                "The token `{key}` ({}) is scoped to one cluster{which}, so the management API rejects it (401).",
                t.masked()
            ),
            format!("Rancher's management plane needs an unscoped key: {NO_SCOPE}."),
        )
        .with_detail(e);
    }
    if message.contains("expired") || ctx.known_expiry.is_some_and(|x| x <= now) {
        let when = ctx
            .known_expiry
            .map(|x| format!(" on {}", x.to_rfc3339()))
            .unwrap_or_default();
        return Diagnosis::new(
            Cause::TokenExpired,
            step,
            format!(
                "The token `{key}` ({}) expired{when}; the server rejects it (401).",
                t.masked()
            ),
            format!("Tokens cannot be renewed: {REPLACE}, noting its expiry."),
        )
        .with_detail(e);
    }
    if message.contains("not found") || message.contains("deleted") {
        return Diagnosis::new(
            Cause::TokenDeleted,
            step,
            format!(
                "The token `{key}` ({}) no longer exists on the server (401).",
                t.masked()
            ),
            format!("It was deleted (or purged after expiring): {REPLACE}."),
        )
        .with_detail(e);
    }

    // A bare 401 cannot tell expired from deleted from cluster-scoped: list what fits, most likely first.
    let mut likely = Vec::new();
    if t.is_kubeconfig() {
        likely.push(format!(
            "`{key}` is a kubeconfig token, not an API key: these are often scoped to one cluster and expire after 30 days; {NO_SCOPE}."
        ));
    }
    if !t.is_ext() && !t.is_kubeconfig() && t.secret_len() != RANCHER_SECRET_LEN {
        likely.push(format!(
            "The secret part has {} characters where Rancher's have {RANCHER_SECRET_LEN}: the token was probably not pasted in full; paste the whole Bearer Token.",
            t.secret_len()
        ));
    }
    likely.push(format!("The token has expired: {REPLACE}."));
    likely.push(format!("The token was deleted, or its user disabled: {REPLACE}."));
    if !t.is_kubeconfig() {
        likely.push(format!("The key was created with a cluster scope: {NO_SCOPE}."));
    }
    likely.push("The token belongs to another Rancher server: check the Instance Domain.".into());
    let mut d = Diagnosis::new(
        Cause::TokenRejected,
        step,
        format!(
            "`{}` is a Rancher server, but it rejected the token `{key}` ({}) with 401; Rancher does not say whether it expired, was deleted or is cluster-scoped.",
            ctx.domain,
            t.masked()
        ),
        format!("{REPLACE} (created with No Scope, under an admin-level account)."),
    )
    .with_detail(e);
    d.likely_causes = likely;
    d
}
