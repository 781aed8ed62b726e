//! The deliberately broken servers of `rancher_sim::testing` fail the way they should.

use rancher_sim::testing;

fn client_trusting(pem: &str) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false);
    if !pem.is_empty() {
        b = b.add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap());
    }
    b.build().unwrap()
}

#[tokio::test]
async fn broken_servers_break() {
    let s = testing::wrong_host_server().await.unwrap();
    assert!(client_trusting(&s.ca_pem)
        .get(format!("https://{}/ping", s.domain()))
        .send()
        .await
        .is_err());
    let s = testing::expired_cert_server().await.unwrap();
    assert!(client_trusting(&s.ca_pem)
        .get(format!("https://{}/ping", s.domain()))
        .send()
        .await
        .is_err());
    let s = testing::html_login_server().await.unwrap();
    let r = client_trusting(&s.ca_pem)
        .get(format!("https://{}/v3/users", s.domain()))
        .send()
        .await
        .unwrap();
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let s = testing::plain_http_server().await.unwrap();
    assert!(client_trusting("")
        .get(format!("https://{}/ping", s.domain()))
        .send()
        .await
        .is_err());
    let r = client_trusting("")
        .get(format!("http://{}/ping", s.domain()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "pong");
}
