//! `rancherctl demo`: the whole product in under a minute against an in-process simulator, with no setup and
//! no network beyond loopback. State lives in a temporary directory that is removed at the end.

use std::sync::Arc;
use std::time::Instant;

use rancher_approval::{SqliteStore, Store};
use rancher_auth::{BearerToken, CaSource, Connection, InstanceDomain, ProfileStore, ProfileUpdate};
use rancher_sim::{RancherVersion, SimConfig, SimHandle, Simulator};
use rancher_workflows::{Approved, Runner, Session, Submitted};

use crate::cli::DemoArgs;
use crate::context::Context;
use crate::error::Exit;

const LIST_WORKFLOWS: [&str; 5] = [
    "list-users",
    "list-global-roles",
    "list-global-role-bindings",
    "list-projects",
    "list-role-templates",
];

fn step(n: u32, title: &str) {
    println!("\n{n}. {title}");
}

fn say(line: impl AsRef<str>) {
    for l in line.as_ref().lines() {
        println!("   {l}");
    }
}

fn connection(sim: &SimHandle, token: &str) -> anyhow::Result<Connection> {
    Ok(
        Connection::new(InstanceDomain::parse(&sim.domain())?, BearerToken::parse(token)?)
            .with_ca(Some(CaSource::Pem(sim.ca_pem()))),
    )
}

async fn session(sim: &SimHandle, token: &str) -> anyhow::Result<Session> {
    let client = connection(sim, token)?
        .client_builder()?
        .without_system_roots()
        .build()?;
    Ok(Session::open(client).await?)
}

/// Runs the demo.
pub async fn run(ctx: &Context, args: DemoArgs) -> anyhow::Result<Exit> {
    if args.serve {
        return serve(ctx).await;
    }
    let started = Instant::now();
    let tmp = tempfile::tempdir()?;
    println!("rancherctl demo: rancher-access end to end, against a simulated Rancher on loopback.");
    println!("(state in a temporary directory; nothing is kept)");

    step(1, "Start a simulated Rancher server");
    let sim = Simulator::start(
        SimConfig::default()
            .rancher_version(RancherVersion::V2_13)
            .users(12)
            .port(0),
    )
    .await
    .map_err(|e| anyhow::anyhow!("the simulator did not start: {e}"))?;
    say(format!(
        "Rancher {} at https://{} (its own throwaway CA)",
        sim.version().full(),
        sim.domain()
    ));
    let tokens = sim.tokens().clone();

    step(2, "Connect, after two deliberate mistakes");
    let pasted = format!("https://{}/dashboard", sim.domain());
    say(format!("a) domain `{pasted}`:"));
    match InstanceDomain::parse(&pasted) {
        Err(e) => say(format!("   refused: {e}")),
        Ok(_) => say("   (unexpectedly accepted)"),
    }
    say("b) an expired API key:");
    match connection(&sim, &tokens.expired)?.verify().await {
        Err(d) => {
            say(format!("   diagnosis: {}", d.summary));
            say(format!("   fix:       {}", d.remedy));
        }
        Ok(_) => say("   (unexpectedly accepted)"),
    }
    say("c) the admin's API key: the test passes, so the profile `demo` is saved");
    let profiles = ProfileStore::open(Some(tmp.path().join("config")))?;
    let update = ProfileUpdate {
        domain: Some(InstanceDomain::parse(&sim.domain())?),
        token: Some(BearerToken::parse(&tokens.admin)?),
        ca: Some(CaSource::Pem(sim.ca_pem())),
        ..Default::default()
    };
    let saved = profiles.save("demo", update).await?;
    if let Some(v) = &saved.verification {
        for line in v.summary_lines() {
            say(format!("   {line}"));
        }
    }

    step(3, "Every list workflow (no approval needed)");
    let store = Arc::new(SqliteStore::open(tmp.path().join("approvals.db"))?);
    let runner = Runner::new(store.clone(), "rancherctl-demo");
    let admin = session(&sim, &tokens.admin).await?;
    for id in LIST_WORKFLOWS {
        runner.install(&admin, id, None).await?;
        match runner.submit(&admin, id, serde_json::json!({}), None, false).await? {
            Submitted::Succeeded { result } => {
                say(format!("{id}: {}", result.summary));
                if let Some(t) = &result.table {
                    let cols: Vec<String> = t.columns.iter().take(3).cloned().collect();
                    let rows = t.rows.iter().take(2).map(|r| r.iter().take(3).cloned().collect());
                    for l in crate::output::table(&cols, rows).lines() {
                        say(format!("   {l}"));
                    }
                }
            }
            Submitted::Pending { .. } => say(format!("{id}: unexpectedly waiting for approval")),
        }
    }

    step(4, "Install the binding workflows (default: the installer approves)");
    for w in rancher_workflows::all_workflows()
        .into_iter()
        .filter(|w| w.writes && w.id != "rancher-api-request")
    {
        let inst = runner.install(&admin, w.id, None).await?;
        say(format!("{}: {}", w.id, inst.policy));
    }

    step(5, "The admin asks to make a user an admin: it waits for approval");
    let target = sim
        .users()
        .standard
        .first()
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("the simulator seeded no standard user"))?;
    let inputs = serde_json::json!({"user": target.username, "role": "admin"});
    let request = match runner
        .submit(
            &admin,
            "create-global-role-binding",
            inputs,
            Some("on-call rotation".into()),
            false,
        )
        .await?
    {
        Submitted::Pending { request, approvers, .. } => {
            say(format!("request {request} (rancherctl would exit 3 here)"));
            say(format!("who approves: {approvers}"));
            request
        }
        Submitted::Succeeded { result } => anyhow::bail!("the request ran without approval: {}", result.summary),
    };
    say(format!(
        "bindings created on the server so far: {}",
        sim.writes("globalrolebindings", "create")
    ));
    match runner.approve(&admin, &request, None).await {
        Err(e) => say(format!("the admin approves their own request: refused: {e}")),
        Ok(_) => say("the admin approved their own request (unexpected)"),
    }

    step(6, "A second admin (the `approver` key) approves: it runs, once");
    let approver = session(&sim, &tokens.approver).await?;
    match runner
        .approve(&approver, &request, Some("checked with the team".into()))
        .await?
    {
        Approved::Succeeded { result, .. } => say(format!(
            "approved by {} and executed: {}",
            approver.who(),
            result.summary
        )),
        Approved::Pending { .. } => say("still waiting (unexpected)"),
        Approved::Failed { error, .. } => say(format!("executed and failed: {error}")),
    }
    say(format!(
        "bindings created on the server: {}",
        sim.writes("globalrolebindings", "create")
    ));

    step(7, "Exactly once: a second approval is refused, nothing runs again");
    match runner.approve(&approver, &request, None).await {
        Err(e) => say(format!("refused: {e}")),
        Ok(_) => say("accepted (unexpected)"),
    }
    say(format!(
        "bindings created on the server: still {}",
        sim.writes("globalrolebindings", "create")
    ));

    step(8, "The audit log, hash-chained and verified");
    let entries = store.audit_entries().await?;
    for e in entries
        .iter()
        .filter(|e| e.request_id.as_deref() == Some(request.as_str()))
    {
        let kind = serde_json::to_value(&e.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        say(format!("#{:<3} {:<19} by {}", e.seq, kind, e.actor));
    }
    say(format!(
        "{} entries verified: the chain is intact",
        store.verify_audit().await?
    ));

    sim.shutdown().await;
    println!(
        "\nDone in {:.1}s. Try it on your own: `rancherctl sim` in one shell, then `rancherctl connect` in another.",
        started.elapsed().as_secs_f64()
    );
    Ok(Exit::Done)
}

/// `demo --serve`: the simulator and the approvals service, one request waiting, until Ctrl-C.
async fn serve(_ctx: &Context) -> anyhow::Result<Exit> {
    let tmp = tempfile::tempdir()?;
    let sim = Simulator::start(
        SimConfig::default()
            .rancher_version(RancherVersion::V2_13)
            .users(12)
            .port(0),
    )
    .await
    .map_err(|e| anyhow::anyhow!("the simulator did not start: {e}"))?;
    let tokens = sim.tokens().clone();
    let store = Arc::new(SqliteStore::open(tmp.path().join("approvals.db"))?);
    // The demo lends the admin's key to the service; in production the service has an account of its own.
    let config = rancher_server::ServerConfig::new("127.0.0.1:0".parse()?, store, connection(&sim, &tokens.admin)?)
        .executor("rancherctl-demo-serve");
    let server = rancher_server::start(config).await?;
    let admin = session(&sim, &tokens.admin).await?;
    let approver = session(&sim, &tokens.approver).await?;
    let runner = server.runner().clone();
    runner.install(&admin, "create-global-role-binding", None).await?;
    let target = sim
        .users()
        .standard
        .first()
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("the simulator seeded no standard user"))?;
    let inputs = serde_json::json!({"user": target.username, "role": "admin"});
    let request = match runner
        .submit(
            &approver,
            "create-global-role-binding",
            inputs,
            Some("on-call rotation this week".into()),
            false,
        )
        .await?
    {
        Submitted::Pending { request, .. } => request,
        Submitted::Succeeded { .. } => anyhow::bail!("the demo request ran without approval"),
    };
    let users = sim.users();
    println!("rancherctl demo --serve: a simulated Rancher and the approvals service, on loopback only.");
    println!();
    println!("  Rancher (simulated):  https://{}", sim.domain());
    println!("  Approvals page:       {}/", server.url());
    println!("  RANCHERCTL_SERVER={}", server.url());
    println!();
    println!(
        "Request {request}: `{}` asks to make `{}` an admin. The installer (`{}`) may approve it.",
        users.approver.username, target.username, users.admin.username
    );
    println!("Sign in on the page with one of these (throwaway, for this simulator only):");
    println!(
        "  {:<9} API token {}   (may approve: installed the workflow)",
        users.admin.username, tokens.admin
    );
    println!(
        "  {:<9} API token {}   (the requester: sees no buttons)",
        users.approver.username, tokens.approver
    );
    println!(
        "  {:<9} API token {}   (standard user: sees nothing to decide)",
        users.user.username, tokens.user
    );
    println!("  or a user name above with the password `{}`", users.password);
    println!();
    println!(
        "API: curl -H \"Authorization: Bearer $TOKEN\" {}/api/v1/requests?state=pending",
        server.url()
    );
    println!("Press Ctrl-C to stop.");
    use std::io::Write as _;
    std::io::stdout().flush()?;
    server.run_until(crate::commands::serve::stop_signal()).await;
    sim.shutdown().await;
    Ok(Exit::Done)
}
