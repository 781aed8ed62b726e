//! Measures small authenticated GETs per second against the simulator (run with `--release`).

use std::time::{Duration, Instant};

use rancher_sim::{SimConfig, Simulator};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sim = Simulator::start(SimConfig::default().users(50_000)).await?;
    let ca = reqwest::Certificate::from_pem(sim.ca_pem().as_bytes())?;
    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
        .build()?;
    let url = format!(
        "{}/apis/management.cattle.io/v3/users/{}",
        sim.base_url(),
        sim.users().user.id
    );
    let token = sim.tokens().admin.clone();
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (client, url, token) = (client.clone(), url.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                let r = client.get(&url).bearer_auth(&token).send().await.expect("answered");
                let _ = r.bytes().await.expect("body");
                n += 1;
            }
            n
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await?;
    }
    println!("{} GETs/s", total / 3);
    Ok(())
}
