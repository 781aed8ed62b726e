//! OpenTelemetry traces over OTLP/HTTP (the `otel` cargo feature).
//!
//! The service makes one `http_request` span per request (its route pattern, method and status), and beneath it a
//! `rancher_call` span per Rancher round trip (operation id, status, attempts) and a `store` span per store
//! transaction (operation). [`otlp_layer`] turns them into OpenTelemetry spans and sends them in batches, from the
//! SDK's own thread, to a collector's `/v1/traces` (OTLP/HTTP with JSON bodies). Spans hold no token, body or raw
//! path, and their names are fixed words (a route is its pattern).
//!
//! ```no_run
//! use tracing_subscriber::layer::SubscriberExt as _;
//! use tracing_subscriber::util::SubscriberInitExt as _;
//! # fn main() -> Result<(), rancher_server::TelemetryError> {
//! let (layer, telemetry) = rancher_server::telemetry::otlp_layer("http://127.0.0.1:4318")?;
//! tracing_subscriber::registry().with(layer).init();
//! // ... run the service ...
//! telemetry.shutdown(); // sends what is still batched
//! # Ok(()) }
//! ```

use tracing::Subscriber;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// Whether this build can export traces (the `otel` feature).
pub const AVAILABLE: bool = cfg!(feature = "otel");

/// The service name traces carry (`service.name`).
pub const SERVICE_NAME: &str = "rancher-access";

/// Why traces cannot be exported as asked.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The build has no OpenTelemetry support.
    #[error(
        "this build cannot export traces: it was built without the `otel` feature (build rancherctl with \
         `--features otel`, or leave out the OTLP endpoint)"
    )]
    NotBuilt,
    /// The endpoint is not an `http://` or `https://` URL.
    #[error("the OTLP endpoint `{0}` is not an http:// or https:// URL (give the collector's OTLP/HTTP address, such as http://otel-collector:4318)")]
    Endpoint(String),
    /// The exporter could not be set up.
    #[error("the OTLP exporter could not be set up: {0}")]
    Exporter(String),
}

/// Keeps the exporter running; [`Telemetry::shutdown`] sends what is still batched and stops it.
#[derive(Debug)]
pub struct Telemetry {
    #[cfg(feature = "otel")]
    provider: opentelemetry_sdk::trace::SdkTracerProvider,
}

impl Telemetry {
    /// Sends the spans still batched and stops the exporter (waits at most the exporter's timeout).
    pub fn shutdown(self) {
        #[cfg(feature = "otel")]
        {
            if let Err(e) = self.provider.force_flush() {
                tracing::warn!(error = %e, "could not send the last traces");
            }
            let _ = self.provider.shutdown();
        }
    }
}

/// The traces URL for `endpoint`: `/v1/traces` is added to a collector's base URL (no path, or `/`); a URL with
/// a path is used as it is.
pub fn traces_url(endpoint: &str) -> Result<url::Url, TelemetryError> {
    let bad = || TelemetryError::Endpoint(endpoint.to_string());
    let mut u = url::Url::parse(endpoint.trim()).map_err(|_| bad())?;
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none_or(str::is_empty) {
        return Err(bad());
    }
    if u.path().is_empty() || u.path() == "/" {
        u.set_path("/v1/traces");
    }
    Ok(u)
}

/// A tracing layer that exports the service's spans (info level and above) to the OTLP/HTTP collector at
/// `endpoint`, and the handle that flushes it. Without the `otel` feature: [`TelemetryError::NotBuilt`].
pub fn otlp_layer<S>(endpoint: &str) -> Result<(Box<dyn Layer<S> + Send + Sync>, Telemetry), TelemetryError>
where
    S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
{
    let url = traces_url(endpoint)?;
    #[cfg(feature = "otel")]
    {
        use opentelemetry::trace::TracerProvider as _;
        use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _};

        // The blocking client runs its own runtime: build it off any async context, as the SDK itself does.
        let client = std::thread::spawn(|| {
            let mut b = reqwest::blocking::Client::builder()
                .use_rustls_tls()
                .timeout(std::time::Duration::from_secs(10))
                .redirect(reqwest::redirect::Policy::none());
            for c in rustls_native_certs::load_native_certs().certs {
                if let Ok(cert) = reqwest::Certificate::from_der(&c) {
                    b = b.add_root_certificate(cert);
                }
            }
            b.build()
        })
        .join()
        .map_err(|_| TelemetryError::Exporter("the HTTP client thread failed".into()))?
        .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpJson)
            .with_endpoint(url.as_str())
            .with_http_client(client)
            .build()
            .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(
                opentelemetry_sdk::Resource::builder()
                    .with_service_name(SERVICE_NAME)
                    .build(),
            )
            .build();
        let tracer = provider.tracer(SERVICE_NAME);
        let layer = tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_filter(tracing_subscriber::filter::LevelFilter::INFO);
        Ok((Box::new(layer), Telemetry { provider }))
    }
    #[cfg(not(feature = "otel"))]
    {
        let _ = url;
        Err(TelemetryError::NotBuilt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_traces_path_is_added_to_a_base_url_only() {
        assert_eq!(
            traces_url("http://collector:4318").unwrap().as_str(),
            "http://collector:4318/v1/traces"
        );
        assert_eq!(
            traces_url("https://otel.example.com/custom/traces").unwrap().as_str(),
            "https://otel.example.com/custom/traces"
        );
        for bad in ["collector:4318", "ftp://x/", "http://", "not a url"] {
            let e = traces_url(bad).unwrap_err().to_string();
            assert!(e.contains("http://otel-collector:4318"), "{bad}: {e}");
        }
    }

    #[test]
    fn without_the_feature_asking_for_traces_says_how_to_get_them() {
        let r = otlp_layer::<tracing_subscriber::Registry>("http://127.0.0.1:4318");
        if AVAILABLE {
            assert!(r.is_ok());
            r.unwrap().1.shutdown();
        } else {
            let e = r.err().unwrap().to_string();
            assert!(e.contains("--features otel"), "{e}");
        }
    }
}
