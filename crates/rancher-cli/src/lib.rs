//! rancherctl internals: the clap types ([`cli`]), where settings come from ([`context`]), rendering
//! ([`output`]), terminal-safe text ([`text`]), one module per command group ([`commands`]) and the guided
//! [`demo`].
//!
//! ```no_run
//! // The binary is a thin wrapper over this:
//! let code = rancher_cli::run_from(["rancherctl", "workflows", "list"]);
//! std::process::exit(code);
//! ```

pub mod cli;
pub mod commands;
pub mod context;
pub mod csv;
pub mod demo;
pub mod error;
pub mod output;
pub mod serve_config;
pub mod text;

use std::ffi::OsString;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::commands::backend::Backend;
use crate::context::Context;
use crate::error::Exit;

/// Parses `args`, runs the command and returns the process exit code (0 done, 1 failed, 2 usage, 3 pending).
pub fn run_from<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args = match serve_config::apply(args.into_iter().map(Into::into).collect()) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{}", text::error_line(&e.to_string()));
            return 2;
        }
    };
    let words: Vec<String> = args.iter().skip(1).map(|a| a.to_string_lossy().into_owned()).collect();
    if let Some(long) = cli::asks_sim_help(&words) {
        print!("{}", cli::sim_help(long));
        return 0;
    }
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        // Help and version go out as clap writes them; a usage error may echo a token pasted as an argument.
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return e.exit_code();
        }
        Err(e) => {
            for line in e.render().to_string().trim_end().lines() {
                eprintln!("{}", text::error_line(&usage_without_environment(line)));
            }
            return e.exit_code();
        }
    };
    let (json_logs, otlp) = match &cli.command {
        Command::Serve(a) => (a.log_format == cli::LogFormat::Json, a.otlp_endpoint.clone()),
        _ => (false, None),
    };
    let telemetry = match init_logging(json_logs, otlp.as_deref()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{}", text::error_line(&format!("error: {e}")));
            return 2;
        }
    };
    let done = dispatch(cli);
    if let Some(t) = telemetry {
        t.shutdown();
    }
    match done {
        Ok(exit) => exit.code(),
        Err(err) if is_broken_pipe(&err) => 0,
        Err(err) => {
            for line in error::report_lines(&err) {
                eprintln!("{}", text::error_line(&line));
            }
            1
        }
    }
}

/// clap writes the global options the environment set (RANCHER_DOMAIN, RANCHER_CA_CERT, ...) into the usage
/// line of an error as if they were required: `Usage: rancherctl run --domain <DOMAIN> ... <WORKFLOW>`. Drops them.
fn usage_without_environment(line: &str) -> String {
    if !line.starts_with("Usage: ") {
        return line.to_string();
    }
    const FROM_ENV: [&str; 7] = [
        "--profile <PROFILE>",
        "--domain <DOMAIN>",
        "--ca-cert <PEM>",
        "--state-dir <DIR>",
        "--store <URL>",
        "--server <URL>",
        "--server-ca-cert <PEM>",
    ];
    let mut out = line.to_string();
    for arg in FROM_ENV {
        out = out.replace(&format!(" {arg}"), "");
    }
    out
}

/// Keeps tokens out of core dumps, first thing in the binary: on Linux the process is marked not dumpable
/// (`PR_SET_DUMPABLE` 0, which also keeps other processes of the same user from reading its memory), and the core
/// file size limit is set to 0 on every Unix.
pub fn harden_process() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable) {
        tracing::debug!(error = %e, "could not mark the process not dumpable");
    }
    #[cfg(unix)]
    if let Err(e) = rustix::process::setrlimit(
        rustix::process::Resource::Core,
        rustix::process::Rlimit {
            current: Some(0),
            maximum: Some(0),
        },
    ) {
        tracing::debug!(error = %e, "could not set the core size limit to 0");
    }
}

/// A closed stdout (`rancherctl ... | head`) is not a failure.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            || c.downcast_ref::<serde_json::Error>()
                .is_some_and(|e| e.io_error_kind() == Some(std::io::ErrorKind::BrokenPipe))
    })
}

/// Log lines on stderr (text or JSON, filtered by `RUST_LOG`), and with `otlp` the service's spans exported to
/// that collector (their own filter: info and above); the handle flushes them at exit.
fn init_logging(
    json: bool,
    otlp: Option<&str>,
) -> Result<Option<rancher_server::telemetry::Telemetry>, rancher_server::TelemetryError> {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::Layer as _;

    // A log pipeline takes the service's info lines too (start, stop, audit heads).
    let default = if json { "info" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Log lines may quote a server or a requester: plain text, escaped like every other output; JSON lines with
    // the same characters as JSON escapes, so each line stays one valid JSON object.
    let lines = tracing_subscriber::fmt::layer().with_ansi(false).with_target(false);
    let lines = if json {
        lines
            .json()
            .flatten_event(true)
            .with_writer(|| SafeStderr(json_safe))
            .with_filter(filter)
            .boxed()
    } else {
        lines
            .with_writer(|| SafeStderr(text::escape_lines))
            .with_filter(filter)
            .boxed()
    };
    let (spans, telemetry) = match otlp {
        Some(endpoint) => {
            let (layer, telemetry) = rancher_server::telemetry::otlp_layer(endpoint)?;
            (Some(layer), Some(telemetry))
        }
        None => (None, None),
    };
    let _ = tracing_subscriber::registry().with(lines).with(spans).try_init();
    Ok(telemetry)
}

/// A JSON log line with every character a terminal acts on or that reorders text (see [`text::is_unsafe`]) that
/// JSON leaves as it is (DEL, C1 controls, bidi overrides) written as a `\\uXXXX` escape.
fn json_safe(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    for c in line.chars() {
        if c != '\n' && text::is_unsafe(c) {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// Stderr for log lines: each event (written whole) made safe by its function, as text (control characters
/// and bidi overrides escaped, see [`text::escape_lines`]) or as JSON ([`json_safe`]).
struct SafeStderr(fn(&str) -> String);

impl std::io::Write for SafeStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        std::io::stderr().write_all(self.0(&String::from_utf8_lossy(buf)).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// A tokio runtime for the commands that talk to a server or the approval store (the catalog needs none).
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

/// Commands that may change the approval store: after them the new audit head is printed on stderr, to be saved
/// elsewhere and checked later (`approvals audit --verify --expect-head`).
fn may_change_store(cmd: &Command) -> bool {
    use cli::{ApprovalsCommand as A, WorkflowsCommand as W};
    if let Command::Run(args) = cmd {
        // A read-only list files nothing and records nothing: no audit head to read before or after.
        if let Some(w) = rancher_workflows::find_workflow(&args.workflow) {
            let inputs =
                rancher_workflows::inputs_from_pairs(commands::run::pairs("input", &args.inputs).unwrap_or_default());
            if commands::backend::read_only_list(w, &inputs, args.dry_run) {
                return false;
            }
        }
    }
    matches!(
        cmd,
        Command::Run(_)
            | Command::AccessControl(_)
            | Command::Approvals(
                A::Approve { .. } | A::Deny { .. } | A::Cancel { .. } | A::Reconcile | A::Import { .. }
            )
            | Command::Workflows(W::Install { .. } | W::SetPolicy { .. })
            | Command::Grants(
                cli::GrantsCommand::Extend { .. } | cli::GrantsCommand::Revoke { .. } | cli::GrantsCommand::Expire
            )
    )
}

/// Commands that run either here or in the approvals service (see [`Backend`]); the others always run here.
fn has_service_mode(cmd: &Command) -> bool {
    matches!(
        cmd,
        Command::Workflows(_)
            | Command::Approvals(_)
            | Command::Grants(_)
            | Command::Run(_)
            | Command::AccessControl(_)
            | Command::Identities(_)
    )
}

fn dispatch(cli: Cli) -> anyhow::Result<Exit> {
    let ctx = Context::new(cli.global);
    // Local or service, decided once for the command.
    let backend = if has_service_mode(&cli.command) {
        Backend::choose(&ctx)?
    } else {
        Backend::Local
    };
    // The service keeps its own audit log (and prints no head here); a local store is left alone.
    if backend.is_service() || !may_change_store(&cli.command) {
        return dispatch_command(ctx, &backend, cli.command);
    }
    let before = context::block_on(ctx.audit_head())?;
    let result = dispatch_command(ctx.clone(), &backend, cli.command);
    // Also after a failure: an approval whose execution failed still changed the log.
    if let Some(after) = context::block_on(ctx.audit_head())?.filter(|h| Some(h) != before.as_ref()) {
        output::note(format!(
            "audit head: {}:{} (save it to check later with approvals audit --verify --expect-head)",
            after.seq, after.hash
        ));
    }
    result
}

fn dispatch_command(ctx: Context, backend: &Backend, command: Command) -> anyhow::Result<Exit> {
    match command {
        Command::Workflows(cli::WorkflowsCommand::List) => {
            runtime()?.block_on(commands::workflows::list(&ctx, backend))
        }
        Command::Workflows(cli::WorkflowsCommand::Show { id }) => {
            runtime()?.block_on(commands::workflows::show(&ctx, backend, &id))
        }
        Command::Profiles(p) => commands::connect::profiles(&ctx, p),
        Command::Api(cli::ApiArgs {
            list: Some(cli::ApiCommand::List),
            ..
        }) => commands::api::list(&ctx),
        Command::Completions { shell } => commands::completions::print(shell),
        Command::Policies(p) => commands::policies::dispatch(&ctx, p),
        Command::Approvals(cli::ApprovalsCommand::List {
            state,
            mine,
            to_approve,
        }) => {
            let which = commands::approvals::Which {
                state: state.as_deref(),
                mine,
                to_approve,
            };
            runtime()?.block_on(commands::approvals::list(&ctx, backend, which))
        }
        Command::Approvals(cli::ApprovalsCommand::Show { id, full }) => {
            runtime()?.block_on(commands::approvals::show(&ctx, backend, &id, full))
        }
        Command::Approvals(cli::ApprovalsCommand::Audit {
            export: Some(format),
            since,
            ..
        }) => runtime()?.block_on(commands::audit_export::run(&ctx, backend, &format, since.unwrap_or(0))),
        Command::Approvals(cli::ApprovalsCommand::Audit {
            verify, expect_head, ..
        }) => runtime()?.block_on(commands::approvals::audit(
            &ctx,
            backend,
            verify,
            expect_head.as_deref(),
        )),
        Command::Approvals(cli::ApprovalsCommand::Approve { id, reason }) => {
            runtime()?.block_on(commands::approvals::approve(&ctx, backend, &id, reason))
        }
        Command::Approvals(cli::ApprovalsCommand::Deny { id, reason }) => {
            runtime()?.block_on(commands::approvals::deny(&ctx, backend, &id, reason))
        }
        Command::Approvals(cli::ApprovalsCommand::Export) => {
            runtime()?.block_on(commands::approvals::export(&ctx, backend))
        }
        Command::Approvals(cli::ApprovalsCommand::Backup { file }) => {
            runtime()?.block_on(commands::approvals::backup(&ctx, backend, &file))
        }
        Command::Approvals(cli::ApprovalsCommand::Import { file }) => {
            runtime()?.block_on(commands::approvals::import(&ctx, backend, &file))
        }
        Command::Approvals(cli::ApprovalsCommand::Reconcile) => {
            runtime()?.block_on(commands::approvals::reconcile(&ctx, backend))
        }
        Command::Approvals(cli::ApprovalsCommand::Cancel { id, reason }) => {
            runtime()?.block_on(commands::approvals::cancel(&ctx, backend, &id, reason))
        }
        Command::Workflows(cli::WorkflowsCommand::Install { ids, reads, policy }) => {
            runtime()?.block_on(commands::install::install(&ctx, backend, &ids, reads, &policy))
        }
        Command::Workflows(cli::WorkflowsCommand::SetPolicy { id, policy }) => {
            runtime()?.block_on(commands::workflows::change(&ctx, backend, &id, &policy, false))
        }
        Command::Connect(args) => runtime()?.block_on(commands::connect::connect(&ctx, args)),
        Command::Check => runtime()?.block_on(commands::connect::check(&ctx)),
        Command::Run(args) => runtime()?.block_on(commands::run::run(&ctx, backend, args)),
        Command::Api(args) => runtime()?.block_on(commands::api::call(&ctx, args)),
        Command::AccessControl(c) => runtime()?.block_on(commands::access::access_control(&ctx, backend, c)),
        Command::Identities(cli::IdentitiesCommand::Search { name, kind }) => {
            runtime()?.block_on(commands::access::search(&ctx, backend, name, kind))
        }
        Command::Grants(g) => runtime()?.block_on(commands::grants::dispatch(&ctx, backend, g)),
        Command::Sim(args) => runtime()?.block_on(commands::sim::sim(&ctx, args)),
        Command::Demo(args) => runtime()?.block_on(demo::run(&ctx, args)),
        Command::Serve(args) => runtime()?.block_on(commands::serve::serve(&ctx, args)),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn json_log_lines_escape_what_json_leaves_raw_and_stay_json() {
        let event = serde_json::json!({"message": "user \u{202e}nimda\u{202c} said \u{1b}[2J\u{7f}\u{85}"}).to_string();
        let safe = super::json_safe(&format!("{event}\n"));
        assert!(
            !safe.chars().any(|c| c != '\n' && rancher_workflows::text::is_unsafe(c)),
            "{safe}"
        );
        let back: serde_json::Value = serde_json::from_str(safe.trim_end()).unwrap();
        assert_eq!(
            back["message"], "user \u{202e}nimda\u{202c} said \u{1b}[2J\u{7f}\u{85}",
            "the same text, escaped"
        );
    }
}
