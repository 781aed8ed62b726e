//! The approver's page in a real browser: headless Debian `chromium` driven through `chromedriver` (packages
//! `chromium` and `chromium-driver`; `.ci/run` installs them). Sign in with an API token, see the pending request,
//! approve it with a reason, see it succeed. Screenshots land in `target/server-browser/`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use rancher_access_tests::process::{KillOnDrop, SpawnKilledOnDrop};
use std::time::{Duration, Instant};

use fantoccini::{ClientBuilder, Locator};
use rancher_access_tests::server;
use serde_json::json;

fn find(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    })
}

/// chromedriver on a free loopback port, killed on drop.
struct Driver(#[allow(dead_code)] KillOnDrop, u16);

async fn start_driver(chromedriver: &Path) -> Driver {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(chromedriver)
        .arg(format!("--port={port}"))
        .arg("--allowed-ips=127.0.0.1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn_killed_on_drop()
        .expect("chromedriver starts");
    let driver = Driver(child, port);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = reqwest::get(format!("http://127.0.0.1:{port}/status")).await {
            if r.status().is_success() {
                return driver;
            }
        }
        assert!(
            Instant::now() < deadline,
            "chromedriver did not answer on 127.0.0.1:{port}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Headless chromium through a chromedriver of its own (both killed on drop), with a throwaway profile.
async fn open_browser() -> (fantoccini::Client, Driver, tempfile::TempDir) {
    let chromium = find("chromium").or_else(|| find("chromium-browser"));
    let chromedriver = find("chromedriver");
    let (Some(chromium), Some(chromedriver)) = (chromium, chromedriver) else {
        panic!("the browser test needs Debian's `chromium` and `chromium-driver` packages: apt-get install -y chromium chromium-driver (.ci/run installs them)");
    };
    let driver = start_driver(&chromedriver).await;
    let profile = tempfile::tempdir().unwrap();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({"binary": chromium, "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900",
                format!("--user-data-dir={}", profile.path().display()), "--no-first-run", "--disable-extensions", "--disable-background-networking", "--disable-sync"]}),
    );
    let browser = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.1))
        .await
        .expect("a browser session");
    (browser, driver, profile)
}

/// Signs in on the page with an API token.
async fn sign_in(browser: &fantoccini::Client, base: &str, token: &str) {
    browser.goto(&format!("{base}/login")).await.unwrap();
    let field = browser
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Id("token"))
        .await
        .unwrap();
    field.send_keys(token).await.unwrap();
    browser
        .find(Locator::Id("signin-token"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// Clicks Approve on a request's page and waits for the page to say the execution succeeded.
async fn approve_and_see_it_succeed(browser: &fantoccini::Client) {
    browser
        .find(Locator::Id("approve"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let flash = browser
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Id("flash"))
        .await
        .unwrap();
    let said = flash.text().await.unwrap();
    assert!(said.contains("it succeeded"), "{said}");
    assert_eq!(
        browser.find(Locator::Id("state")).await.unwrap().text().await.unwrap(),
        "succeeded"
    );
}

fn shots_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/server-browser");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approver_approves_in_a_real_browser() {
    let (sim, srv, id) = server::with_pending_request("on-call <rotation> this week").await;
    let t = sim.tokens().clone();
    let (browser, driver, _profile) = open_browser().await;
    let shots = shots_dir();

    browser.goto(&format!("{}/", srv.url())).await.unwrap();
    assert!(
        browser.current_url().await.unwrap().path().ends_with("/login"),
        "not signed in: sent to the sign-in page"
    );
    sign_in(&browser, srv.url(), &t.admin).await;
    let row = browser
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css(&format!("tr[data-id='{id}']")))
        .await
        .expect("the pending request is listed");
    assert!(
        row.text().await.unwrap().contains("on-call <rotation> this week"),
        "the reason is shown as text"
    );
    std::fs::write(shots.join("1-pending.png"), browser.screenshot().await.unwrap()).unwrap();

    browser
        .find(Locator::LinkText(&id))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Id("approve"))
        .await
        .unwrap();
    let targets = browser
        .find(Locator::Id("targets"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(targets.starts_with("carol (u-"), "the target by name and id: {targets}");
    browser
        .find(Locator::Id("reason"))
        .await
        .unwrap()
        .send_keys("checked with the team")
        .await
        .unwrap();
    std::fs::write(shots.join("2-request.png"), browser.screenshot().await.unwrap()).unwrap();
    approve_and_see_it_succeed(&browser).await;
    std::fs::write(shots.join("3-approved.png"), browser.screenshot().await.unwrap()).unwrap();
    assert!(
        sim.has_binding(&sim.user_id("carol").unwrap(), "admin"),
        "executed on the server"
    );

    // The same page on a phone-sized window.
    browser.set_window_size(390, 844).await.unwrap();
    browser.goto(&format!("{}/history", srv.url())).await.unwrap();
    std::fs::write(shots.join("4-history-phone.png"), browser.screenshot().await.unwrap()).unwrap();

    browser.close().await.unwrap();
    drop(driver);
    srv.shutdown().await;
}

/// Issue 30: a standard user files `grant-project-role` from the page's form (pickers, a duration), an approver
/// signs in, reads the plan in names (the target's display name and username, the role's display name, the
/// project's name) and approves it, and it succeeds, all in a real browser.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_filed_from_the_form_is_approved_in_names_in_a_real_browser() {
    let (sim, _svc, srv) = server::sim_and_service(std::sync::Arc::new(rancher_approval::MemoryStore::new())).await;
    let t = sim.tokens().clone();
    server::install(&server::Api::new(srv.url(), Some(&t.admin)), "grant-project-role").await;
    let (browser, driver, _profile) = open_browser().await;
    let shots = shots_dir();
    let base = srv.url().to_string();

    sign_in(&browser, &base, &t.user).await;
    browser.goto(&format!("{base}/file/grant-project-role")).await.unwrap();
    let user = browser
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Id("in-user"))
        .await
        .expect("the form");
    // Rancher shows alice only her own user, so the form takes the person's username typed.
    user.send_keys("carol").await.unwrap();
    browser
        .find(Locator::Id("in-role"))
        .await
        .unwrap()
        .select_by_value("project-member")
        .await
        .unwrap();
    let mut project = None;
    for option in browser.find_all(Locator::Css("#in-project option")).await.unwrap() {
        let value = option.attr("value").await.unwrap().unwrap_or_default();
        if !value.is_empty() {
            project = Some(value);
            break;
        }
    }
    let project = project.expect("a project to pick");
    browser
        .find(Locator::Id("in-project"))
        .await
        .unwrap()
        .select_by_value(&project)
        .await
        .unwrap();
    browser
        .find(Locator::Id("in-duration"))
        .await
        .unwrap()
        .send_keys("2h")
        .await
        .unwrap();
    browser
        .find(Locator::Id("reason"))
        .await
        .unwrap()
        .send_keys("on call this week")
        .await
        .unwrap();
    std::fs::write(shots.join("5-file-form.png"), browser.screenshot().await.unwrap()).unwrap();
    browser.find(Locator::Id("file")).await.unwrap().click().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let id = loop {
        let path = browser.current_url().await.unwrap().path().to_string();
        if let Some(id) = path.strip_prefix("/requests/") {
            break id.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "filing did not lead to the request's page: {path}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // The approver, in the same browser after the requester's cookies are gone.
    browser.delete_all_cookies().await.unwrap();
    sign_in(&browser, &base, &t.admin).await;
    browser.goto(&format!("{base}/requests/{id}")).await.unwrap();
    browser
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Id("approve"))
        .await
        .expect("the approve button");
    let plan = browser.find(Locator::Id("plan")).await.unwrap().text().await.unwrap();
    for name in ["Carol Example", "(carol, ", "Project Member", "Default", "for 2h"] {
        assert!(plan.contains(name), "{name} not in the plan: {plan}");
    }
    std::fs::write(shots.join("6-plan-in-names.png"), browser.screenshot().await.unwrap()).unwrap();
    approve_and_see_it_succeed(&browser).await;
    browser.close().await.unwrap();
    drop(driver);
    srv.shutdown().await;
}
