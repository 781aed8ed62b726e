//! `rancherctl connect`, `check` and `profiles list|show|delete`.

use rancher_auth::{ProfileSummary, ProfileUpdate, Verification};
use serde_json::json;

use crate::cli::{ConnectArgs, Format, ProfilesCommand};
use crate::context::{Context, DEFAULT_PROFILE};
use crate::error::{Diagnosed, Exit, Failure};
use crate::output;

/// Prints a passed connection test: facts on stdout (table format), warnings on stderr.
fn print_verification(
    format: Format,
    v: &Verification,
    header: Option<String>,
    doc: serde_json::Value,
) -> anyhow::Result<()> {
    for w in &v.warnings {
        output::warn(w);
    }
    output::data(format, &doc, || {
        let mut lines: Vec<String> = header.into_iter().collect();
        lines.extend(v.summary_lines().into_iter().filter(|l| !l.starts_with("warning:")));
        lines.join("\n")
    })
}

/// Tests the connection and saves the profile only when the test passes. On an existing profile, a flag left
/// out keeps the stored value; a changed domain, token or CA is tested before it is saved.
pub async fn connect(ctx: &Context, args: ConnectArgs) -> anyhow::Result<Exit> {
    let name = ctx
        .global
        .profile
        .clone()
        .unwrap_or_else(|| DEFAULT_PROFILE.to_string());
    let store = ctx.profiles()?;
    // `--server URL` (or RANCHERCTL_SERVER) saves where this profile's approval commands go.
    let server = match ctx.global.server.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(url) => Some(
            rancher_server::check_server_url(url)
                .map_err(|e| {
                    Failure::new(
                        format!("--server: {}", e.message),
                        "pass the RANCHERCTL_SERVER=... URL that `rancherctl serve` printed",
                    )
                })?
                .to_string(),
        ),
        None => None,
    };
    // Read once (--token-stdin can be read only once): it goes into the update and to the service test.
    let token = ctx.token_flag()?;
    let before = if store.exists(&name)? {
        store.show(&name)?.data.server
    } else {
        None
    };
    let same = |a: &str, b: &str| a.trim_end_matches('/') == b.trim_end_matches('/');
    let server_changed = server
        .as_deref()
        .is_some_and(|s| !before.as_deref().is_some_and(|b| same(b, s)));
    let server_cleared = args.clear_server && before.is_some();
    // A new service URL is tested before anything is saved: its liveness, then who the token is there.
    let mut service = None;
    if let Some(url) = server.as_deref() {
        let token_for_service = match &token {
            Some(t) => t.clone(),
            None if store.exists(&name)? => store.token(&name)?,
            None => {
                return Err(Failure::new(
                    "no token given to test the service with",
                    "give it by --token-file, --token-stdin or RANCHER_TOKEN",
                )
                .into())
            }
        };
        let progress = output::Progress::spinner("testing the approvals service");
        let tested = crate::commands::backend::test_service(ctx, url, token_for_service).await;
        drop(progress);
        service = Some(tested.map_err(|e| {
            let lines = crate::error::report_lines(&e);
            let cause = lines
                .first()
                .map(|l| l.trim_start_matches("error: ").to_string())
                .unwrap_or_default();
            let fix = lines
                .get(1)
                .map(|l| l.trim_start_matches("fix: ").to_string())
                .unwrap_or_else(|| "check the URL and that the service runs".into());
            Failure::new(format!("the service was not saved: {cause}"), fix)
        })?);
    }
    let update = ProfileUpdate {
        domain: ctx.domain_flag()?,
        token,
        ca: ctx.ca_flag(),
        clear_ca: args.clear_ca,
        server,
        clear_server: args.clear_server,
    };
    let progress = output::Progress::spinner("testing the connection");
    let saved = store.save(&name, update).await?;
    let (verification, tested) = match saved.verification {
        Some(v) => (v, true),
        None => (store.check(&name).await?, false),
    };
    drop(progress);
    let what = match (saved.created, tested, server_changed, server_cleared) {
        (true, _, _, _) => format!("profile `{name}` saved (new)"),
        (false, true, true, _) => format!("profile `{name}` updated (the change was tested; service URL saved)"),
        (false, true, _, true) => format!("profile `{name}` updated (the change was tested; service URL cleared)"),
        (false, true, _, _) => format!("profile `{name}` updated (the change was tested)"),
        (false, false, true, _) => format!("profile `{name}` updated (service URL saved)"),
        (false, false, _, true) => format!("profile `{name}` updated (service URL cleared)"),
        (false, false, false, false) => format!("profile `{name}` unchanged (tested again)"),
    };
    let header = match &service {
        Some((line, _)) => format!("{what}\n{line}"),
        None => what,
    };
    let doc = json!({"profile": name, "created": saved.created, "verification": verification, "service": service.as_ref().map(|(_, d)| d)});
    print_verification(ctx.format(), &verification, Some(header), doc)?;
    Ok(Exit::Done)
}

/// The connection test on the profile (recording what it learnt), or on the flags and environment.
pub async fn check(ctx: &Context) -> anyhow::Result<Exit> {
    // Anything from flags or the environment goes through `connection`, which refuses mixing it with a profile.
    let g = &ctx.global;
    let from_flags = g.domain.is_some()
        || g.token_file.is_some()
        || g.token_stdin
        || g.ca_cert.is_some()
        || std::env::var_os(crate::context::TOKEN_ENV).is_some();
    let progress = output::Progress::spinner("testing the connection");
    let (v, label) = match ctx.profile_name()? {
        Some(name) if !from_flags => (
            ctx.profiles()?.check(&name).await?,
            format!("profile `{name}`: connection OK"),
        ),
        _ => {
            let conn = ctx.connection()?;
            (
                conn.verify().await.map_err(|d| Diagnosed(Box::new(d)))?,
                "connection OK".to_string(),
            )
        }
    };
    drop(progress);
    let mut doc = serde_json::to_value(&v)?;
    let mut label = label;
    // With a service configured, it is tested too (the approval commands go there).
    if let Some(url) = ctx.server_url()? {
        let token = match ctx.token_flag()? {
            Some(t) => t,
            None => ctx.profile_token_for_service(&url)?,
        };
        let progress = output::Progress::spinner("testing the approvals service");
        let (line, d) = crate::commands::backend::test_service(ctx, &url, token).await?;
        drop(progress);
        label = format!("{label}\n{line}");
        doc["service"] = d;
    }
    print_verification(ctx.format(), &v, Some(label), doc)?;
    Ok(Exit::Done)
}

fn profile_rows(list: &[ProfileSummary]) -> String {
    output::table(
        &["NAME", "DOMAIN", "USER", "TOKEN", "EXPIRES", "VERIFIED", "SERVER"],
        list.iter().map(|p| {
            let d = &p.data;
            vec![
                p.name.clone(),
                d.domain.to_string(),
                d.user.clone().unwrap_or_default(),
                d.token_masked.clone(),
                d.token_expires_at
                    .map(|t| t.format("%Y-%m-%d").to_string())
                    .unwrap_or_else(|| "never".into()),
                d.verified_at
                    .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                    .unwrap_or_default(),
                d.server
                    .as_deref()
                    .map(crate::text::escape)
                    .unwrap_or_else(|| "-".into()),
            ]
        }),
    )
}

/// `profiles list|show|delete`.
pub fn profiles(ctx: &Context, cmd: ProfilesCommand) -> anyhow::Result<Exit> {
    let store = ctx.profiles()?;
    match cmd {
        ProfilesCommand::List => {
            let list = store.list()?;
            output::data(ctx.format(), &list, || {
                if list.is_empty() {
                    "no profiles; save one with `rancherctl connect`".into()
                } else {
                    profile_rows(&list)
                }
            })?;
        }
        ProfilesCommand::Use { name } => {
            store.set_current(&name)?;
            let p = store.show(&name)?;
            output::data(ctx.format(), &json!({"current": name}), || {
                format!("profile `{name}` is now used when none is named ({})", p.data.domain)
            })?;
        }
        ProfilesCommand::Show { name } => {
            let name = match name.or_else(|| ctx.global.profile.clone()) {
                Some(n) => n,
                None => store.current()?.unwrap_or_else(|| DEFAULT_PROFILE.to_string()),
            };
            let p = store.show(&name)?;
            output::data(ctx.format(), &p, || {
                let d = &p.data;
                let mut l = vec![
                    format!("profile:  {}", p.name),
                    format!("domain:   {}", d.domain),
                    format!("token:    {} (access key {})", d.token_masked, d.access_key),
                ];
                l.push(format!(
                    "expires:  {}",
                    d.token_expires_at
                        .map(|t| t.to_rfc3339())
                        .unwrap_or_else(|| "never or unknown".into())
                ));
                if let Some(u) = &d.user {
                    l.push(format!("user:     {u}"));
                }
                if let Some(v) = &d.rancher_version {
                    l.push(format!("rancher:  {v}"));
                }
                l.push(format!(
                    "ca:       {}",
                    match &d.ca {
                        Some(rancher_auth::StoredCa::Path(p)) => p.display().to_string(),
                        Some(rancher_auth::StoredCa::Pem(_)) => "stored PEM".into(),
                        None => "system roots".into(),
                    }
                ));
                if let Some(t) = d.verified_at {
                    l.push(format!("verified: {}", t.to_rfc3339()));
                }
                l.push(format!(
                    "server:   {}",
                    match &d.server {
                        Some(s) => crate::text::escape(s),
                        None => "none (approvals use the local store)".into(),
                    }
                ));
                l.join("\n")
            })?;
        }
        ProfilesCommand::Delete { name } => {
            store.delete(&name)?;
            output::data(ctx.format(), &json!({"deleted": name}), || {
                format!("profile `{name}` deleted")
            })?;
        }
    }
    Ok(Exit::Done)
}
