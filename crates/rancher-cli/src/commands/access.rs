//! `rancherctl access-control ...` and `rancherctl identities search`: thin front ends over the access-control
//! workflows. Writes go through the runner (approval policy, exit 3 while pending); reads run through the runner
//! when installed, else directly (their default policy is "none").

use std::path::Path;

use rancher_workflows::access::{discover, Discovery};
use rancher_workflows::find_workflow;
use serde_json::{json, Map, Value};

use crate::cli::{AccessControlCommand, ChangeAllowedArgs, WriteArgs};
use crate::commands::backend::Backend;
use crate::context::Context;
use crate::error::{Exit, Failure};
use crate::output;

fn path_text(p: &Path) -> String {
    p.display().to_string()
}

/// Reads a file named on the command line the one safe way (regular file, no symlink, size cap, timeout).
async fn local_file(path: &Path, flag: &str) -> anyhow::Result<(String, u32)> {
    use rancher_workflows::files::{read_given_file, MAX_GIVEN_FILE, READ_TIMEOUT};
    let read = read_given_file(path, MAX_GIVEN_FILE, READ_TIMEOUT).await.map_err(|e| {
        Failure::new(
            format!("{flag}: {e}"),
            format!("give {flag} a regular file of at most {MAX_GIVEN_FILE} bytes"),
        )
    })?;
    let text = String::from_utf8(read.bytes).map_err(|_| {
        Failure::new(
            format!("{flag}: `{}` is not UTF-8 text", path.display()),
            "give a text file",
        )
    })?;
    Ok((text, read.mode))
}

/// The provider settings of a `--config` file (JSON or YAML object), for the service.
async fn local_settings(path: &Path, flag: &str) -> anyhow::Result<Map<String, Value>> {
    let (text, _) = local_file(path, flag).await?;
    match serde_norway::from_str::<Value>(&text) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(Failure::new(
            format!(
                "{flag}: `{}` is not a JSON or YAML object of provider settings",
                path.display()
            ),
            "put one object in it, e.g. {\"servers\": [\"ad.example.com\"]}",
        )
        .into()),
    }
}

/// A secret from a file readable by its owner only, for the service.
async fn local_secret(path: &Path, flag: &str) -> anyhow::Result<String> {
    let (text, mode) = local_file(path, flag).await?;
    if mode & 0o077 != 0 {
        return Err(Failure::new(
            format!(
                "{flag}: `{}` holds a secret but others may read it (mode {mode:o})",
                path.display()
            ),
            format!("run `chmod 600 {}`", path.display()),
        )
        .into());
    }
    if text.trim().is_empty() {
        return Err(Failure::new(format!("{flag}: `{}` is empty", path.display()), "put the secret in it").into());
    }
    Ok(text)
}

/// Through the service, the inputs that name files on this machine are read here and their contents sent in their
/// place: the service never reads a file of its own host, and holds the secrets in memory for this one request
/// only (never stored). `config` (a path) becomes the settings object; `test-password-file` becomes
/// `test-password` (one line end dropped), `test-code-file` becomes `test-code` (trimmed), and any other
/// `NAME-file` becomes `NAME`; each of these is a secret, so its file must be readable by its owner only. An empty
/// path is no file, as locally. `flag` names an input as the operator gave it (in errors, which never quote a
/// file's contents).
pub(crate) async fn inline_files(inputs: &mut Map<String, Value>, flag: impl Fn(&str) -> String) -> anyhow::Result<()> {
    let named: Vec<(String, String)> = inputs
        .iter()
        .filter(|(k, _)| *k == "config" || k.ends_with("-file"))
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.trim().to_string())))
        .collect();
    for (name, path) in named {
        if path.is_empty() {
            inputs.remove(&name);
            continue;
        }
        let path = Path::new(&path);
        let (inline, value) = match name.as_str() {
            "config" => (
                "config".to_string(),
                Value::Object(local_settings(path, &flag(&name)).await?),
            ),
            "test-code-file" => {
                let code = local_secret(path, &flag(&name)).await?;
                ("test-code".to_string(), json!(code.trim()))
            }
            _ => {
                let secret = local_secret(path, &flag(&name)).await?;
                let secret = secret
                    .strip_suffix('\n')
                    .map(|s| s.strip_suffix('\r').unwrap_or(s))
                    .unwrap_or(&secret)
                    .to_string();
                (name.trim_end_matches("-file").to_string(), json!(secret))
            }
        };
        inputs.remove(&name);
        inputs.insert(inline, value);
    }
    Ok(())
}

/// Runs one `access-control` subcommand.
pub async fn access_control(ctx: &Context, backend: &Backend, cmd: AccessControlCommand) -> anyhow::Result<Exit> {
    match cmd {
        AccessControlCommand::Status => status(ctx, backend).await,
        AccessControlCommand::Enable {
            provider,
            config,
            mode,
            allow,
            test_user,
            test_password_file,
            test_code_file,
            write,
        } => {
            let mut inputs = Map::new();
            inputs.insert("provider".into(), json!(provider));
            let mut put = |k: &str, v: Option<Value>| {
                if let Some(v) = v {
                    inputs.insert(k.into(), v);
                }
            };
            put("mode", mode.map(Value::from));
            put("allow", (!allow.is_empty()).then(|| json!(allow.join(","))));
            put("test-user", test_user.map(Value::from));
            put("config", config.as_deref().map(path_text).map(Value::from));
            put(
                "test-password-file",
                test_password_file.as_deref().map(path_text).map(Value::from),
            );
            put(
                "test-code-file",
                test_code_file.as_deref().map(path_text).map(Value::from),
            );
            if backend.is_service() {
                inline_files(&mut inputs, |name| format!("--{name}")).await?;
            }
            submit(ctx, backend, "access-control-enable", inputs, write).await
        }
        AccessControlCommand::Allow(a) => change(ctx, backend, "access-control-allow", a).await,
        AccessControlCommand::Disallow(a) => change(ctx, backend, "access-control-disallow", a).await,
        AccessControlCommand::Disable {
            provider,
            acknowledge,
            write,
        } => {
            let mut inputs = Map::new();
            if let Some(p) = provider {
                inputs.insert("provider".into(), json!(p));
            }
            if let Some(code) = acknowledge {
                inputs.insert("acknowledge".into(), json!(code));
            }
            submit(ctx, backend, "access-control-disable", inputs, write).await
        }
        AccessControlCommand::SwitchPlan { to } => {
            read(ctx, backend, "access-control-switch-plan", json!({ "to": to })).await
        }
    }
}

/// `identities search NAME [--type user|group]`.
pub async fn search(ctx: &Context, backend: &Backend, name: String, kind: Option<String>) -> anyhow::Result<Exit> {
    let mut inputs = json!({ "name": name });
    if let Some(k) = kind {
        inputs["type"] = json!(k);
    }
    read(ctx, backend, "identities-search", inputs).await
}

async fn change(ctx: &Context, backend: &Backend, workflow: &str, a: ChangeAllowedArgs) -> anyhow::Result<Exit> {
    let mut inputs = Map::new();
    inputs.insert("identities".into(), json!(a.identities.join(",")));
    if let Some(m) = a.mode {
        inputs.insert("mode".into(), json!(m));
    }
    if let Some(p) = a.provider {
        inputs.insert("provider".into(), json!(p));
    }
    submit(ctx, backend, workflow, inputs, a.write).await
}

/// A write: through the runner, exactly like `rancherctl run`.
async fn submit(
    ctx: &Context,
    backend: &Backend,
    workflow: &str,
    inputs: Map<String, Value>,
    write: WriteArgs,
) -> anyhow::Result<Exit> {
    backend
        .submit(ctx, workflow, Value::Object(inputs), write.reason, write.dry_run)
        .await
}

/// A read, exactly as `rancherctl run` runs it: through the service when one is in use (installed there); locally
/// through the runner when installed (its policy applies), else at once with the caller's rights.
async fn read(ctx: &Context, backend: &Backend, workflow: &str, inputs: Value) -> anyhow::Result<Exit> {
    // The same rule as `rancherctl run` (see `Backend::submit`), by the same code.
    let _ = find_workflow(workflow).ok_or_else(|| {
        Failure::new(
            format!("unknown workflow `{workflow}`"),
            "this is a bug: please report it",
        )
    })?;
    backend.submit(ctx, workflow, inputs, None, false).await
}

/// `access-control status`: with a token, the full status; with only a domain, what the server tells anyone.
async fn status(ctx: &Context, backend: &Backend) -> anyhow::Result<Exit> {
    // Decided without reading the token (stdin can be read once only): any token source means the full status.
    let g = &ctx.global;
    if backend.is_service() {
        return read(ctx, backend, "access-control-status", json!({})).await;
    }
    let token_env = std::env::var(crate::context::TOKEN_ENV).is_ok_and(|t| !t.trim().is_empty());
    if g.token_file.is_some() || g.token_stdin || token_env || ctx.profile_name()?.is_some() {
        return read(ctx, backend, "access-control-status", json!({})).await;
    }
    let Some(domain) = ctx.domain_flag()? else {
        // Neither a token nor a domain: the connection check says what is missing.
        ctx.connection()?;
        return read(ctx, backend, "access-control-status", json!({})).await;
    };
    let mut b = rancher_api::Client::builder(domain.to_string());
    if let Some(ca) = ctx.ca_flag() {
        b = b.ca_pem(ca.load()?);
    }
    let d = discover(&b.build()?).await?;
    output::data(ctx.format(), &serde_json::to_value(&d)?, || render_discovery(&d))?;
    Ok(Exit::Done)
}

fn render_discovery(d: &Discovery) -> String {
    let on = d.providers.iter().map(|p| p.id.as_str()).collect::<Vec<_>>().join(", ");
    let mut s = format!("{} server (told without a token)\n", d.generation);
    s.push_str(&match (d.security, on.is_empty()) {
        (false, _) => "access control is OFF: anyone who reaches the server acts as admin".to_string(),
        (true, true) => "access control is on (the provider is not public)".to_string(),
        (true, false) => format!("enabled providers: {on}"),
    });
    s.push_str("\nwith a token (`rancherctl connect`), status also shows access modes and allowed identities");
    s
}
