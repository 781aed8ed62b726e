//! Child process of the memory case: lists every user of a simulator, streaming (counting and dropping each
//! user) or collecting (keeping them all in a `Vec`), then prints its own peak RSS as one JSON line.
//!
//! Usage: `rancher-bench-rss stream|collect DOMAIN CA_FILE`, with the token in `RANCHER_BENCH_TOKEN`.

use anyhow::{bail, Context, Result};
use futures::TryStreamExt;
use rancher_api::requests::RkUsersList;
use rancher_api::{Client, SecretString};
use rancher_bench::machine::peak_rss_kib;
use rancher_bench::memory::{RssReport, TOKEN_ENV};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [mode, domain, ca_file] = args.as_slice() else {
        bail!("usage: rancher-bench-rss stream|collect DOMAIN CA_FILE (token in {TOKEN_ENV})");
    };
    let token = std::env::var(TOKEN_ENV).with_context(|| format!("{TOKEN_ENV} is not set"))?;
    let ca = std::fs::read(ca_file).with_context(|| format!("reading {ca_file}"))?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let client = Client::builder(domain.as_str())
        .token(SecretString::from(token))
        .ca_pem(ca)
        .without_system_roots()
        .build()?;
    let baseline_kib = peak_rss_kib().context("no VmHWM in /proc/self/status")?;
    let request = RkUsersList::new().limit(rancher_bench::list::PAGE_SIZE as i64);
    let items = rt.block_on(async {
        match mode.as_str() {
            "stream" => client
                .users()
                .list(request)
                .try_fold(0usize, |n, _user| async move { Ok(n + 1) })
                .await
                .map_err(anyhow::Error::from),
            "collect" => {
                let all: Vec<_> = client.users().list(request).try_collect().await?;
                let n = all.len();
                // Measure while the collection is still alive.
                std::hint::black_box(&all);
                Ok(n)
            }
            other => bail!("unknown mode `{other}`: stream or collect"),
        }
    })?;
    let peak_kib = peak_rss_kib().context("no VmHWM in /proc/self/status")?;
    println!(
        "{}",
        serde_json::to_string(&RssReport {
            items,
            baseline_kib,
            peak_kib
        })?
    );
    Ok(())
}
