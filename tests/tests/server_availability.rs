//! The service stays up and says little to strangers: idle and half-open connections are closed after the header
//! timeout and capped per address, so `/healthz` keeps answering (N7); `/metrics` can ask for a token or move to
//! its own listener, `/readyz` names no error, and requests for another host name are refused (N11).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rancher_access_tests::server::{self, Api};
use rancher_approval::MemoryStore;
use rancher_sim::RancherVersion;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Opens `n` connections to `addr`, each sending the start of a request and nothing more: half of them part of
/// the request line, the others the request line and one header (never the blank line that ends the header).
async fn half_open(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        let start: &[u8] = if i % 2 == 0 {
            b"GET /heal"
        } else {
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
        };
        let _ = s.write_all(start).await;
        out.push(s);
    }
    out
}

/// Whether the service closed `s` within `within` (end of stream or a reset; whatever it wrote before is read).
async fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

/// Counts the connections the service closed within `within`, waiting on all of them at once.
async fn count_closed(conns: &mut [TcpStream], within: Duration) -> usize {
    let waits = conns.iter_mut().map(|s| closed_within(s, within));
    futures::future::join_all(waits)
        .await
        .into_iter()
        .filter(|c| *c)
        .count()
}

/// `/healthz` over a fresh connection from `from`, within a second.
async fn healthz_from(base: &str, from: IpAddr) -> Result<u16, String> {
    let http = reqwest::Client::builder()
        .local_address(from)
        .timeout(Duration::from_secs(1))
        .build()
        .expect("client");
    let started = Instant::now();
    let r = http
        .get(format!("{base}/healthz"))
        .send()
        .await
        .map_err(|e| format!("no answer after {:?}: {e}", started.elapsed()))?;
    eprintln!(
        "/healthz from {from} answered {} in {:?}",
        r.status(),
        started.elapsed()
    );
    Ok(r.status().as_u16())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn n7_idle_half_open_connections_leave_healthz_answering() {
    let sim = rancher_access_tests::sim(RancherVersion::V2_13, 0).await;
    let svc = server::service_account(&sim).await;
    // Every connection from one address is admitted here: the header timeout alone must clear them.
    let header_timeout = Duration::from_secs(2);
    let srv = server::start(
        server::config(&sim, &svc, Arc::new(MemoryStore::new()))
            .header_timeout(header_timeout)
            .max_connections(4096, 4096),
    )
    .await;
    let addr = srv.addr();

    let mut held = half_open(addr, 500).await;
    assert_eq!(
        healthz_from(srv.url(), "127.0.0.1".parse().unwrap()).await,
        Ok(200),
        "/healthz answers within a second while 500 half-open connections are held"
    );

    // A kept-alive connection that went quiet after one answer is closed after the same timeout.
    let mut idle = TcpStream::connect(addr).await.unwrap();
    idle.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut first = [0u8; 12];
    idle.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");

    let waited = Instant::now();
    let closed = count_closed(&mut held, header_timeout + Duration::from_secs(8)).await;
    eprintln!(
        "{closed} of 500 half-open connections closed {:?} after the last was opened",
        waited.elapsed()
    );
    assert_eq!(
        closed, 500,
        "every half-open connection is closed after the header timeout"
    );
    assert!(
        closed_within(&mut idle, Duration::from_secs(5)).await,
        "an idle kept-alive connection is closed after the header timeout"
    );
    srv.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn n7_connections_over_the_per_address_cap_are_closed_at_once() {
    let sim = rancher_access_tests::sim(RancherVersion::V2_13, 0).await;
    let svc = server::service_account(&sim).await;
    let srv = server::start(
        server::config(&sim, &svc, Arc::new(MemoryStore::new()))
            .header_timeout(Duration::from_secs(30))
            .max_connections(4096, 50),
    )
    .await;
    let mut held = half_open(srv.addr(), 500).await;
    // 450 are over the cap of 50 for 127.0.0.1: closed at once (with a 503 when the socket took it).
    let closed = count_closed(&mut held, Duration::from_secs(2)).await;
    assert_eq!(
        closed, 450,
        "connections over the per-address cap are closed at once; the 50 admitted wait for their header"
    );
    // Another address is not held up by the first one's connections.
    assert_eq!(healthz_from(srv.url(), "127.0.0.2".parse().unwrap()).await, Ok(200));
    let other = reqwest::Client::builder()
        .local_address("127.0.0.2".parse::<IpAddr>().unwrap())
        .build()
        .unwrap();
    let metrics = Api::with_client(srv.url(), None, other).get("/metrics").await.1;
    let text = metrics.as_str().unwrap_or_default();
    assert!(text.contains("rancher_access_connections_refused_total 450"), "{text}");
    drop(held);
    srv.shutdown().await;
}

/// One raw HTTP/1.1 GET with the `Host` header given; answers the status code.
async fn get_with_host(addr: SocketAddr, path: &str, host: &str) -> u16 {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer);
    text.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n11_requests_for_another_host_name_are_refused() {
    let sim = rancher_access_tests::sim(RancherVersion::V2_13, 0).await;
    let svc = server::service_account(&sim).await;
    let srv = server::start(server::config(&sim, &svc, Arc::new(MemoryStore::new()))).await;
    let addr = srv.addr();
    let port = addr.port();
    // A page on a name an attacker controls, resolved to 127.0.0.1 (DNS rebinding), sends its own name.
    for path in ["/login", "/metrics", "/api/v1/openapi.json"] {
        assert_eq!(
            get_with_host(addr, path, &format!("rebind.attacker.example:{port}")).await,
            421,
            "{path}"
        );
        assert_eq!(
            get_with_host(addr, path, "127.0.0.1").await,
            421,
            "{path}: another port"
        );
    }
    assert_eq!(
        get_with_host(addr, "/api/v1/openapi.json", &format!("127.0.0.1:{port}")).await,
        200
    );
    assert_eq!(
        get_with_host(addr, "/api/v1/openapi.json", &format!("LOCALHOST:{port}")).await,
        200
    );
    // Probes come by address: the health endpoints answer whatever the name (and say only up or down).
    assert_eq!(get_with_host(addr, "/healthz", "10.0.0.7:8443").await, 200);
    srv.shutdown().await;

    // Behind a proxy: the public URL's name is accepted (with or without its default port), others still not.
    let srv = server::start(
        server::config(&sim, &svc, Arc::new(MemoryStore::new()))
            .public_url("https://approvals.example.com".parse().unwrap()),
    )
    .await;
    let addr = srv.addr();
    assert_eq!(
        get_with_host(addr, "/api/v1/openapi.json", "approvals.example.com").await,
        200
    );
    assert_eq!(
        get_with_host(addr, "/api/v1/openapi.json", "Approvals.Example.Com:443").await,
        200
    );
    assert_eq!(
        get_with_host(addr, "/api/v1/openapi.json", &format!("127.0.0.1:{}", addr.port())).await,
        200
    );
    assert_eq!(
        get_with_host(addr, "/api/v1/openapi.json", "approvals.example.com.attacker.example").await,
        421
    );
    srv.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n11_metrics_ask_for_the_token_when_one_is_set() {
    let sim = rancher_access_tests::sim(RancherVersion::V2_13, 0).await;
    let svc = server::service_account(&sim).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("metrics.token");
    std::fs::write(&file, "metrics-token-0123456789abcdef\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = rancher_server::config::read_metrics_token_file(&file)
            .unwrap_err()
            .to_string();
        assert!(e.contains("chmod 600"), "{e}");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let token = rancher_server::config::read_metrics_token_file(&file).unwrap();
    let srv = server::start(server::config(&sim, &svc, Arc::new(MemoryStore::new())).metrics_token(token)).await;
    let http = reqwest::Client::new();
    let get = |auth: Option<&'static str>| {
        let mut r = http.get(format!("{}/metrics", srv.url()));
        if let Some(a) = auth {
            r = r.header("authorization", a);
        }
        async move {
            let resp = r.send().await.unwrap();
            (resp.status().as_u16(), resp.text().await.unwrap())
        }
    };
    let (st, body) = get(None).await;
    assert_eq!(st, 401, "{body}");
    assert!(!body.contains("rancher_access_"), "{body}");
    assert_eq!(get(Some("Bearer metrics-token-0123456789abcdeX")).await.0, 401);
    let (st, body) = get(Some("Bearer metrics-token-0123456789abcdef")).await;
    assert_eq!(st, 200);
    assert!(body.contains("rancher_access_pending_requests"), "{body}");
    srv.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n11_metrics_on_their_own_listener_leave_the_main_one() {
    let sim = rancher_access_tests::sim(RancherVersion::V2_13, 0).await;
    let svc = server::service_account(&sim).await;
    let srv = server::start(
        server::config(&sim, &svc, Arc::new(MemoryStore::new())).metrics_listen("127.0.0.1:0".parse().unwrap()),
    )
    .await;
    let m = srv.metrics_addr().expect("a metrics listener");
    let (st, _) = Api::new(srv.url(), None).get("/metrics").await;
    assert_ne!(st, 200, "the main listener no longer serves /metrics");
    let (st, body) = Api::new(&format!("http://{m}"), None).get("/metrics").await;
    assert_eq!(st, 200);
    assert!(body.as_str().unwrap().contains("rancher_access_pending_requests"));
    let (st, _) = Api::new(&format!("http://{m}"), None).get("/api/v1/openapi.json").await;
    assert_eq!(st, 404, "the metrics listener serves nothing else");
    assert_eq!(
        get_with_host(m, "/metrics", &format!("rebind.attacker.example:{}", m.port())).await,
        421,
        "a loopback metrics listener checks Host too"
    );
    srv.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n11_readyz_says_what_is_unavailable_but_not_why() {
    let sim = rancher_access_tests::sim(RancherVersion::V2_13, 0).await;
    let svc = server::service_account(&sim).await;
    let domain = sim.domain().to_string();
    let srv = server::start(server::config(&sim, &svc, Arc::new(MemoryStore::new()))).await;
    let (st, r) = Api::new(srv.url(), None).get("/readyz").await;
    assert_eq!((st, r["status"].as_str()), (200, Some("ready")), "{r}");
    sim.shutdown().await;
    let (st, r) = Api::new(srv.url(), None).get("/readyz").await;
    assert_eq!(st, 503);
    assert_eq!(
        r,
        serde_json::json!({"status": "not ready", "store": "ok", "rancher": "unavailable"})
    );
    let host = domain.split(':').next().unwrap_or(&domain).to_string();
    assert!(!r.to_string().contains(&host), "no host name in the answer: {r}");
    srv.shutdown().await;
}

/// A hostile "service" on loopback: `/api/v1/me` announces a 1 GiB answer, `/api/v1/workflows` sends JSON
/// whitespace for ever, and a streamed run sends one line that never ends.
async fn hostile_service() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head).to_string();
                let path = head.split(' ').nth(1).unwrap_or("").to_string();
                if path == "/api/v1/me" {
                    let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1073741824\r\n\r\n{\"id\":").await;
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    return;
                }
                let (kind, fill) = if path == "/api/v1/runs" {
                    ("application/x-ndjson", b'x')
                } else {
                    ("application/json", b' ')
                };
                let _ = s
                    .write_all(
                        format!("HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\nTransfer-Encoding: chunked\r\n\r\n")
                            .as_bytes(),
                    )
                    .await;
                if kind.ends_with("ndjson") {
                    let head = "{\"workflow\":\"list-users\",\"noun\":\"users\"}\n{\"";
                    let _ = s.write_all(format!("{:x}\r\n{head}\r\n", head.len()).as_bytes()).await;
                }
                let chunk = vec![fill; 64 * 1024];
                let framed = [format!("{:x}\r\n", chunk.len()).into_bytes(), chunk, b"\r\n".to_vec()].concat();
                // For ever, until the client hangs up.
                while s.write_all(&framed).await.is_ok() {}
            });
        }
    });
    (addr, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n20_the_client_bounds_what_it_buffers_from_a_hostile_service() {
    let (addr, task) = hostile_service().await;
    let token =
        rancher_auth::BearerToken::parse("token-abcde:0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmn")
            .unwrap();
    let client = rancher_server::ServerClient::new(&format!("http://{addr}"), token, None).unwrap();

    let e = client.me().await.unwrap_err();
    assert!(e.message.contains("larger than 128 MiB"), "{e}");

    let e = tokio::time::timeout(Duration::from_secs(60), client.workflows())
        .await
        .expect("the client gives up by itself")
        .unwrap_err();
    assert!(e.message.contains("larger than 128 MiB"), "{e}");

    let list = client
        .run_list("list-users", serde_json::json!({}).into(), None, false)
        .await
        .unwrap();
    let rancher_server::ListAnswer::Items(mut items) = list else {
        panic!("a streamed list")
    };
    let e = tokio::time::timeout(Duration::from_secs(60), items.next())
        .await
        .expect("the client gives up by itself")
        .unwrap_err();
    assert!(e.message.contains("a line longer than 1 MiB"), "{e}");
    task.abort();
}

/// `--server-ca-cert` pins: the service's certificate must chain to that CA, whatever the system trusts (the
/// system's roots are stood in for by `SSL_CERT_FILE`).
#[test]
fn n20_server_ca_cert_replaces_the_system_roots() {
    use rancher_access_tests::cli::{command, Run, SimCli};
    let s = SimCli::start(RancherVersion::V2_13, 0);
    let dir = tempfile::tempdir().unwrap();
    let (served, other) = (dir.path().join("served"), dir.path().join("other"));
    std::fs::create_dir_all(&served).unwrap();
    std::fs::create_dir_all(&other).unwrap();
    let (cert, key, _) = server::tls_files(&served);
    server::tls_files(&other);
    let srv = s.rt.block_on(async {
        let svc = server::service_account(&s.sim).await;
        server::start(server::config(&s.sim, &svc, Arc::new(MemoryStore::new())).tls(&cert, &key)).await
    });
    let run = |ca: Option<&std::path::Path>| {
        let mut env = s.base_env();
        env.push(("RANCHER_TOKEN", s.sim.tokens().admin.clone()));
        env.push(("RANCHERCTL_SERVER", srv.url().to_string()));
        // The "system" trusts the CA that signed the service's certificate.
        env.push(("SSL_CERT_FILE", served.join("ca.pem").display().to_string()));
        let ca_arg = ca.map(|p| p.display().to_string());
        let mut args = vec!["-o", "json", "approvals", "list"];
        if let Some(p) = &ca_arg {
            args.splice(0..0, ["--server-ca-cert", p.as_str()]);
        }
        Run::from_output(command(&args, &env).output().unwrap())
    };
    run(None).expect_code(0);
    run(Some(&served.join("ca.pem"))).expect_code(0);
    // Pinned to another CA: the system's trust in the service's CA no longer counts.
    let pinned = run(Some(&other.join("ca.pem")));
    assert_ne!(pinned.code, 0, "{}", pinned.stdout);
    assert!(
        pinned.stderr.contains("could not reach the approvals service"),
        "{}",
        pinned.stderr
    );
    s.rt.block_on(srv.shutdown());
}

/// `rancherctl serve` takes the new options, and refuses a metrics token file others may read.
#[test]
fn n11_serve_refuses_a_metrics_token_file_others_may_read() {
    use rancher_access_tests::cli::{command, Run, SimCli};
    let s = SimCli::start(RancherVersion::V2_13, 0);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("metrics.token");
    std::fs::write(&file, "metrics-token-0123456789abcdef\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let f = file.display().to_string();
    let args = [
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--header-timeout",
        "5",
        "--max-connections",
        "100",
        "--max-connections-per-ip",
        "10",
        "--metrics-token-file",
        &f,
    ];
    let run = Run::from_output(
        command(&args, &s.connected_env(Some(&s.sim.tokens().admin)))
            .output()
            .unwrap(),
    );
    assert_ne!(run.code, 0, "{}", run.stdout);
    assert!(
        run.stderr.contains("metrics token") && run.stderr.contains("chmod 600"),
        "{}",
        run.stderr
    );
}

/// Issue 33: a stop is bounded. With Rancher hanging under an approval in flight, `shutdown` returns after the
/// configured grace instead of waiting for Rancher; the request cut off is not lost: a new service on the same
/// store approves it and it runs once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stop_with_rancher_hanging_ends_after_the_grace_and_loses_nothing() {
    let sim = rancher_access_tests::sim(RancherVersion::V2_13, 0).await;
    let svc = server::service_account(&sim).await;
    let t = sim.tokens().clone();
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn rancher_approval::Store> =
        Arc::new(rancher_approval::SqliteStore::open(dir.path().join("approvals.db")).unwrap());
    let config = || server::config(&sim, &svc, store.clone()).shutdown_grace(Duration::from_secs(1));
    let srv = server::start(config()).await;
    let (admin, approver) = (
        Api::new(srv.url(), Some(&t.admin)),
        Api::new(srv.url(), Some(&t.approver)),
    );
    server::install(&admin, "create-global-role-binding").await;
    let (st, sub) = approver
        .post(
            "/api/v1/runs",
            serde_json::json!({"workflow": "create-global-role-binding", "inputs": {"user": "carol", "role": "admin"}}),
        )
        .await;
    assert_eq!(st, 202, "{sub}");
    let id = sub["request"].as_str().unwrap().to_string();

    sim.set_faults(rancher_sim::Faults::none().with_latency(Duration::from_secs(120)));
    let hanging = {
        let (url, token, id) = (srv.url().to_string(), t.admin.clone(), id.clone());
        tokio::spawn(async move {
            Api::new(&url, Some(&token))
                .try_post(&format!("/api/v1/requests/{id}/approve"), serde_json::json!({}))
                .await
        })
    };
    // Let the approval reach Rancher (a setup pause, not a measurement).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stopping = Instant::now();
    srv.shutdown().await;
    let took = stopping.elapsed();
    assert!(
        took < Duration::from_secs(30),
        "the stop waited {took:?} for Rancher, which hangs for 120 s; the grace is 1 s"
    );
    hanging.abort();

    sim.set_faults(rancher_sim::Faults::none());
    let before = sim.writes("globalrolebindings", "create");
    let srv = server::start(config()).await;
    let admin = Api::new(srv.url(), Some(&t.admin));
    let (st, done) = admin
        .post(&format!("/api/v1/requests/{id}/approve"), serde_json::json!({}))
        .await;
    assert_eq!((st, done["state"].as_str()), (200, Some("succeeded")), "{done}");
    assert_eq!(sim.writes("globalrolebindings", "create"), before + 1, "executed once");
    srv.shutdown().await;
}
