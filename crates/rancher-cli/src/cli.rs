//! The command line: clap types only, no behaviour.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// rancherctl: connect to Rancher, run the prebuilt access workflows with approvals, and call any API operation.
///
/// Connection settings come from flags and the environment (RANCHER_DOMAIN, RANCHER_TOKEN, RANCHER_CA_CERT), or
/// else from the selected profile (RANCHER_PROFILE, `default` when none is named), used whole: a profile's token
/// goes only to its own domain, so a profile beside a domain, token or CA from elsewhere is refused. The token is
/// never a plain flag: use --token-file PATH (mode 600), --token-stdin or RANCHER_TOKEN.
///
/// Exit codes: 0 done, 1 failed, 2 usage error, 3 submitted and waiting for approval.
#[derive(Debug, Parser)]
#[command(name = "rancherctl", version, propagate_version = true, max_term_width = 110)]
pub struct Cli {
    /// Global options.
    #[command(flatten)]
    pub global: Global,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command accepts (shown under their own heading, after the command's own options).
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Global options")]
pub struct Global {
    /// Output format of the data printed on stdout (progress and warnings go to stderr).
    #[arg(short = 'o', long, global = true, value_enum, default_value_t = Format::Table)]
    pub output: Format,
    /// Profile to use (default: `default`, when it exists).
    #[arg(long, global = true, env = "RANCHER_PROFILE", hide_env_values = true)]
    pub profile: Option<String>,
    /// Rancher instance domain, e.g. `rancher.example.com` or `rancher.example.com:8443` (never a URL).
    #[arg(long, global = true, env = "RANCHER_DOMAIN", hide_env_values = true)]
    pub domain: Option<String>,
    /// Read the token from this file (it must be readable by its owner only: chmod 600).
    #[arg(long, global = true, value_name = "PATH", conflicts_with = "token_stdin")]
    pub token_file: Option<PathBuf>,
    /// Read the token from standard input.
    #[arg(long, global = true)]
    pub token_stdin: bool,
    /// PEM file of the CA that signed the server's certificate (private CAs).
    #[arg(
        long,
        global = true,
        value_name = "PEM",
        env = "RANCHER_CA_CERT",
        hide_env_values = true
    )]
    pub ca_cert: Option<PathBuf>,
    /// Directory of the approval store (approvals.db: installs, requests, audit log).
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        env = "RANCHERCTL_STATE_DIR",
        hide_env_values = true
    )]
    pub state_dir: Option<PathBuf>,
    /// The approval store: `sqlite:PATH` or `postgres://USER@HOST/DATABASE` (default: approvals.db in the state
    /// directory).
    #[arg(
        long,
        global = true,
        value_name = "URL",
        env = "RANCHERCTL_STORE",
        hide_env_values = true
    )]
    pub store: Option<String>,
    /// Use the approvals service at this URL (`rancherctl serve` prints it) for workflows, runs and approvals,
    /// instead of a local store: your token proves who you are; the service keeps the store and executes. With
    /// `connect`, saved in the profile; `--server ''` uses the local store whatever the profile says.
    #[arg(
        long,
        global = true,
        value_name = "URL",
        env = "RANCHERCTL_SERVER",
        hide_env_values = true
    )]
    pub server: Option<String>,
    /// PEM file of the CA that signed the approvals service's certificate (with --server): only this CA is trusted
    /// for the service, the system's roots are not (the certificate is pinned to it).
    #[arg(
        long,
        global = true,
        value_name = "PEM",
        env = "RANCHERCTL_SERVER_CA_CERT",
        hide_env_values = true
    )]
    pub server_ca_cert: Option<PathBuf>,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Format {
    /// Tables and short lines for people.
    #[default]
    Table,
    /// Exactly one JSON document.
    Json,
    /// One YAML document.
    Yaml,
    /// CSV (RFC 4180, formula-safe) of a workflow's table, for spreadsheets.
    Csv,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Test a connection and save it as a profile (only when the test passes). Re-run to edit: blank keeps.
    #[command(
        after_help = "Examples:\n  rancherctl connect --profile prod --domain rancher.example.com --token-file ~/.rancher-token --ca-cert ca.pem\n  rancherctl connect --profile prod --server https://approvals.example.com\n  rancherctl profiles use prod"
    )]
    Connect(ConnectArgs),
    /// Run the connection test again (on the profile, or on the flags/environment); exit 1 when it fails.
    Check,
    /// Saved profiles (tokens are shown masked).
    #[command(subcommand)]
    Profiles(ProfilesCommand),
    /// The catalog of prebuilt workflows: list, show, install, set-policy.
    #[command(subcommand)]
    Workflows(WorkflowsCommand),
    /// Run an installed workflow; exits 3 with the request id when it needs approval.
    #[command(
        after_help = "Examples:\n  rancherctl run list-users -o json\n  rancherctl run create-global-role-binding --input user=alice --input role=admin --reason INC-42\n  rancherctl run grant-project-role --input project=downstream/Default --input user=alice --input role=\"Project Member\" --input duration=8h --dry-run"
    )]
    Run(RunArgs),
    /// Call any operation of the endpoint list directly (`api list` shows them).
    Api(ApiArgs),
    /// Approval requests and the audit log.
    #[command(
        subcommand,
        after_help = "Examples:\n  rancherctl approvals list --state pending\n  rancherctl approvals show req-...\n  rancherctl --profile approver approvals approve req-... --reason \"checked with the team\"\n  rancherctl approvals audit --verify"
    )]
    Approvals(ApprovalsCommand),
    /// Access control: which provider is on, who may log in, and the lockout-proof way to change it (1.x and 2.x).
    #[command(subcommand)]
    AccessControl(AccessControlCommand),
    /// Users, groups and organisations the auth providers know.
    #[command(subcommand)]
    Identities(IdentitiesCommand),
    /// Time-bound grants: who has what until when; extend, end early, revoke the due ones (for cron).
    #[command(
        subcommand,
        after_help = "Examples:\n  rancherctl grants list --active\n  rancherctl grants extend req-... --by 2h\n  rancherctl grants revoke req-...\n  rancherctl grants expire        # from cron, when no `rancherctl serve` runs"
    )]
    Grants(GrantsCommand),
    /// Approval rules as files (CEL): check them and run their tests, e.g. in CI.
    #[command(
        subcommand,
        after_help = "Examples:\n  rancherctl policies check -f policies/\n  rancherctl policies test -f policies/ -t policy-tests.yaml"
    )]
    Policies(PoliciesCommand),
    /// Start the simulated Rancher server and print shell lines to reach it (`rancherctl sim --env-file sim.env &`,
    /// then `set -a; . ./sim.env; set +a`).
    Sim(SimArgs),
    /// Walk through the whole product against an in-process simulator: no setup, no network.
    Demo(DemoArgs),
    /// The approvals service: HTTP API, approver web page, webhooks (prints RANCHERCTL_SERVER=<url> when ready).
    #[command(
        after_help = "Examples:\n  rancherctl serve --listen 127.0.0.1:0 --store sqlite:approvals.db\n  rancherctl serve --listen 0.0.0.0:8443 --tls-cert c.pem --tls-key k.pem --store postgres://approvals@db/approvals"
    )]
    Serve(ServeArgs),
    /// Print a shell completion script.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// `connect` options.
#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// Forget the stored CA bundle.
    #[arg(long, conflicts_with = "ca_cert")]
    pub clear_ca: bool,
    /// Forget the stored approvals service URL (the profile's approval commands go back to the local store).
    #[arg(long, conflicts_with = "server")]
    pub clear_server: bool,
}

/// `profiles` subcommands.
#[derive(Debug, Subcommand)]
pub enum ProfilesCommand {
    /// Every saved profile.
    List,
    /// Make a profile the one used when no --profile or RANCHER_PROFILE names one (as kubectl's current context).
    Use {
        /// Profile name.
        name: String,
    },
    /// One profile.
    Show {
        /// Profile name (default: --profile, or `default`).
        name: Option<String>,
    },
    /// Delete a profile and its token file.
    Delete {
        /// Profile name.
        name: String,
    },
}

/// Approval policy options shared by `install` and `set-policy`.
#[derive(Debug, Args, Clone, Default)]
pub struct PolicyArgs {
    /// Who approves: `none`, `installer`, `any-of:U,...`, `all-of:U,...` or `at-least:N:U,...` where U is a
    /// user id (`u-abc12`), `user:<id>` or `group:<principal id>`. Default: the workflow's default.
    #[arg(long, value_name = "POLICY", conflicts_with = "policy_file")]
    pub policy: Option<String>,
    /// The requester may approve their own request.
    #[arg(long)]
    pub allow_self_approval: bool,
    /// Pending requests expire after this long: e.g. `7d`, `36h`, `90m`.
    #[arg(long, value_name = "DURATION")]
    pub expires_after: Option<String>,
    /// Time-bound grants (and extensions) may last at most this long: e.g. `8h` (workflows with a `duration`).
    #[arg(long, value_name = "DURATION")]
    pub max_duration: Option<String>,
    /// Every request must give a `duration` (no permanent grants).
    #[arg(long)]
    pub require_duration: bool,
    /// The policy as a JSON or YAML file, e.g.
    /// `{"kind":"approvers","combine":"any","thresholds":[{"count":2,"of":[{"user":"u-a"},{"user":"u-b"}]}]}`.
    #[arg(long, value_name = "FILE")]
    pub policy_file: Option<PathBuf>,
}

/// `workflows` subcommands.
#[derive(Debug, Subcommand)]
pub enum WorkflowsCommand {
    /// The catalog, with each workflow's policy (installed or default). Needs no connection.
    List,
    /// One workflow: inputs, output, policy.
    Show {
        /// Workflow id.
        id: String,
    },
    /// Install workflows (you become their installer) with their default or the given policy.
    Install {
        /// Workflow ids (several may be given; the policy flags apply to each).
        #[arg(required_unless_present = "reads", value_name = "ID")]
        ids: Vec<String>,
        /// Also install every workflow that writes nothing and needs no approval by default (the reads), each with
        /// its default policy; those already installed are left as they are.
        #[arg(long)]
        reads: bool,
        /// The policy.
        #[command(flatten)]
        policy: PolicyArgs,
    },
    /// Change the policy of an installed workflow (its installer or an admin).
    SetPolicy {
        /// Workflow id.
        id: String,
        /// The policy.
        #[command(flatten)]
        policy: PolicyArgs,
    },
}

/// `run` options.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Workflow id (`rancherctl workflows list`).
    pub workflow: String,
    /// An input, `key=value` (repeatable); a value starting with `{` is read as a JSON object.
    #[arg(long = "input", short = 'i', value_name = "KEY=VALUE")]
    pub inputs: Vec<String>,
    /// Send only reads; show the writes that would be sent. Needs no approval.
    #[arg(long)]
    pub dry_run: bool,
    /// Why (recorded on the approval request and in the audit log).
    #[arg(long)]
    pub reason: Option<String>,
    /// Break-glass: run a time-bound grant at once through the approvals service, where a policy rule permits it
    /// for you (at most one hour, reviewed afterwards); needs --reason (e.g. INC-123).
    #[arg(long, conflicts_with = "dry_run", requires = "reason")]
    pub break_glass: bool,
}

/// `api` options: `api list`, or `api OPERATION-ID ...`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ApiArgs {
    /// `list`.
    #[command(subcommand)]
    pub list: Option<ApiCommand>,
    /// The operation id, e.g. `rk.users.list`.
    pub operation: Option<String>,
    /// A path or query parameter, `key=value` (repeatable).
    #[arg(long = "param", short = 'p', value_name = "KEY=VALUE")]
    pub params: Vec<String>,
    /// The JSON request body, from a file (`-` reads stdin).
    #[arg(long, value_name = "FILE")]
    pub body: Option<PathBuf>,
    /// For paginated operations: stream every page and print every item as one array.
    #[arg(long)]
    pub all: bool,
    /// Send a write operation directly, without approval; it is recorded in the local audit log as a direct
    /// write first. Without it, writes are refused (`rancherctl run rancher-api-request` is the approved path).
    #[arg(long, short = 'y')]
    pub yes: bool,
}

/// `api` subcommands.
#[derive(Debug, Subcommand)]
pub enum ApiCommand {
    /// Every operation id with its method and path.
    List,
}

/// `approvals` subcommands.
#[derive(Debug, Subcommand)]
pub enum ApprovalsCommand {
    /// Requests, newest last.
    List {
        /// Only requests in this state.
        #[arg(long, value_parser = ["pending", "approved", "executing", "succeeded", "failed", "denied", "expired", "cancelled"])]
        state: Option<String>,
        /// Only the requests you filed.
        #[arg(long, conflicts_with = "to_approve")]
        mine: bool,
        /// Only pending requests waiting on you: filed by others, and yours to approve.
        #[arg(long)]
        to_approve: bool,
    },
    /// One request with its decisions and outcome.
    Show {
        /// Request id (`req-...`).
        id: String,
        /// Show every line of a plan (offboarding steps), not only the first 20.
        #[arg(long)]
        full: bool,
    },
    /// Approve as the token's user; when that approves the request it is executed here, once.
    Approve {
        /// Request id.
        id: String,
        /// Why.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Deny as the token's user.
    Deny {
        /// Request id.
        id: String,
        /// Why.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Cancel a pending request (its requester or an admin).
    Cancel {
        /// Request id.
        id: String,
        /// Why.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Settle executions left in doubt by a crash (claimed, no outcome): each is checked against the server and
    /// marked succeeded or failed, in the audit log too.
    Reconcile,
    /// The audit log.
    Audit {
        /// Check the hash chain; exit 1 when it was tampered with.
        #[arg(long)]
        verify: bool,
        /// With --verify: the log must still hold this head, saved earlier somewhere the store's writers cannot
        /// change (`SEQ:HASH` as printed after every change, or the full hash). Catches a cut-off or rewritten log.
        #[arg(long, value_name = "SEQ:HASH", requires = "verify")]
        expect_head: Option<String>,
        /// Write the log for a SIEM to stdout, one JSON object a line, each with its hash-chain fields:
        /// `jsonl` (the entries), `ocsf` (OCSF IAM events) or `cloudevents` (CloudEvents 1.0 JSON).
        #[arg(long, value_name = "FORMAT", conflicts_with = "verify")]
        export: Option<String>,
        /// With --export: only the entries after this sequence number (resume where the last export ended).
        #[arg(long, value_name = "SEQ", requires = "export")]
        since: Option<u64>,
    },
    /// Write the whole store (installations, requests with their decisions and outcomes, audit log, delivery
    /// cursors) to stdout as JSON lines, from one snapshot: to move it to another store with `approvals import`.
    Export,
    /// Copy a SQLite store to FILE (a new, owner-only file) while it is in use, from one snapshot, and verify the
    /// copy's audit chain; prints its head, to keep apart and check a restore with `audit --verify --expect-head`.
    /// A PostgreSQL store is backed up with pg_dump (docs/approvals.md, "Backups").
    Backup {
        /// The new file.
        file: PathBuf,
    },
    /// Read an `approvals export` into this store, which must be empty; the audit chain and every request are
    /// verified before anything is kept.
    Import {
        /// The export file (`-`: stdin).
        file: PathBuf,
    },
}

/// `sim` options.
#[derive(Debug, Args)]
pub struct SimArgs {
    /// Port on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Rancher generation to play: 2.13, 2.12, 2.11, 2.8 or 1.6.
    #[arg(long, default_value = "2.13")]
    pub rancher_version: String,
    /// Extra seeded standard users.
    #[arg(long, default_value_t = 20)]
    pub users: usize,
    /// Extra seeded tokens spread over the users (sessions, API keys, kubeconfig tokens; some expired).
    #[arg(long, default_value_t = 0)]
    pub tokens: usize,
    /// Also write the `export` lines to this file (mode 600) once the simulator is ready, for
    /// `set -a; . FILE; set +a` in other shells.
    #[arg(long, value_name = "FILE")]
    pub env_file: Option<std::path::PathBuf>,
}

/// Options of access-control commands that write: they go through the workflow's approval policy.
#[derive(Debug, Args, Clone, Default)]
pub struct WriteArgs {
    /// Send only reads; show the writes that would be sent (secrets masked). Needs no approval.
    #[arg(long)]
    pub dry_run: bool,
    /// Why (recorded on the approval request and in the audit log).
    #[arg(long)]
    pub reason: Option<String>,
}

/// `access-control` subcommands.
#[derive(Debug, Subcommand)]
pub enum AccessControlCommand {
    /// Which provider is on, its access mode and allowed identities. Without a token: what the server tells anyone.
    Status,
    /// Enable a provider safely: save it disabled, prove a test login works, only then enable. A failed test leaves
    /// it off. Approval: the installer's, by default.
    Enable {
        /// activedirectory, azuread, openldap, github or local.
        #[arg(long)]
        provider: String,
        /// JSON or YAML file with the provider settings (chmod 600 when it holds a secret).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// unrestricted (default), restricted or required.
        #[arg(long)]
        mode: Option<String>,
        /// An identity to allow, by name or id (repeatable; looked up on the server). The tester is always allowed.
        #[arg(long, value_name = "IDENTITY")]
        allow: Vec<String>,
        /// Login of the test user (password providers: Active Directory, OpenLDAP, local; Azure AD on 1.x).
        #[arg(long)]
        test_user: Option<String>,
        /// File (chmod 600) holding the test user's password.
        #[arg(long, value_name = "FILE")]
        test_password_file: Option<PathBuf>,
        /// File (chmod 600) holding an OAuth code from the provider's redirect (GitHub; Azure AD on 2.x).
        #[arg(long, value_name = "FILE")]
        test_code_file: Option<PathBuf>,
        /// Dry run and reason.
        #[command(flatten)]
        write: WriteArgs,
    },
    /// Allow identities (looked up by name or id); stored secrets are kept.
    Allow(ChangeAllowedArgs),
    /// Remove identities from the allowed list; refused when it would lock you out.
    Disallow(ChangeAllowedArgs),
    /// Turn the enabled provider off (on 1.x the server is then open to anyone; on 2.x Rancher deletes the
    /// provider's users, bindings and tokens: a dry run or `switch-plan` lists them with the code to acknowledge).
    Disable {
        /// The provider (default: the enabled one).
        #[arg(long)]
        provider: Option<String>,
        /// 2.x: the code the plan shows for what Rancher will delete (`delete-...`); needed when it deletes anything.
        #[arg(long, value_name = "CODE")]
        acknowledge: Option<String>,
        /// Dry run and reason.
        #[command(flatten)]
        write: WriteArgs,
    },
    /// Before switching providers: every account whose identity would no longer resolve, and (2.x) what Rancher
    /// deletes when the current provider is disabled, with the code `disable --acknowledge` needs.
    SwitchPlan {
        /// The provider you would switch to.
        #[arg(long)]
        to: String,
    },
}

/// `access-control allow|disallow` options.
#[derive(Debug, Args)]
pub struct ChangeAllowedArgs {
    /// Identities: names, logins or ids (`rancherctl identities search NAME` shows them).
    #[arg(required = true, value_name = "IDENTITY")]
    pub identities: Vec<String>,
    /// Also change the access mode: unrestricted, restricted or required.
    #[arg(long)]
    pub mode: Option<String>,
    /// The provider (default: the enabled one).
    #[arg(long)]
    pub provider: Option<String>,
    /// Dry run and reason.
    #[command(flatten)]
    pub write: WriteArgs,
}

/// `identities` subcommands.
#[derive(Debug, Subcommand)]
pub enum IdentitiesCommand {
    /// Look identities up by name or login prefix.
    Search {
        /// Name or login prefix.
        name: String,
        /// Only users or only groups.
        #[arg(long = "type", value_parser = ["user", "group"])]
        kind: Option<String>,
    },
}

/// `policies` subcommands.
#[derive(Debug, Subcommand)]
pub enum PoliciesCommand {
    /// Load a policy directory: every rule compiles, is within the cost limit; print the set's hash and the rules.
    Check {
        /// The directory of YAML rule files (read in file-name order).
        #[arg(short = 'f', long = "file", value_name = "DIR")]
        dir: std::path::PathBuf,
    },
    /// Run policy tests: each case's facts against the rules, compared with the outcome expected. For a failing
    /// case, prints the rules that matched, in order. Exits 0 only when every case passes.
    Test {
        /// The directory of YAML rule files (read in file-name order).
        #[arg(short = 'f', long = "file", value_name = "DIR")]
        dir: std::path::PathBuf,
        /// The tests file (cases of facts and the outcome expected).
        #[arg(short = 't', long = "tests", value_name = "FILE")]
        tests: std::path::PathBuf,
    },
    /// Show what applying a policy directory would change in the installed rules: the rules added, removed and
    /// changed (by id), and the old and new hash. Changes nothing.
    Plan {
        /// The directory of YAML rule files (read in file-name order).
        #[arg(short = 'f', long = "file", value_name = "DIR")]
        dir: std::path::PathBuf,
    },
    /// Install a policy directory's rules: files an `apply-policies` request that only Rancher admins may approve;
    /// once approved and executed, the rules are installed. Applying what is installed changes nothing.
    Apply {
        /// The directory of YAML rule files (read in file-name order).
        #[arg(short = 'f', long = "file", value_name = "DIR")]
        dir: std::path::PathBuf,
        /// Why (shown to approvers, recorded in the audit log).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Write the installed rules as policy files into a directory (created when missing), so that `policies plan`
    /// of that directory shows no change.
    Export {
        /// The directory to write the files into.
        #[arg(short = 'f', long = "file", value_name = "DIR")]
        dir: std::path::PathBuf,
    },
}

/// `grants` subcommands.
#[derive(Debug, Subcommand)]
pub enum GrantsCommand {
    /// Who has what, until when, and the time left.
    List {
        /// Only grants in force, not yet due.
        #[arg(long, conflicts_with_all = ["expired", "overdue"])]
        active: bool,
        /// Only grants that ended.
        #[arg(long, conflicts_with = "overdue")]
        expired: bool,
        /// Only grants past their due time and not yet revoked (Rancher was unreachable, or nothing ran).
        #[arg(long)]
        overdue: bool,
    },
    /// File an approval request, under the grant's policy, to extend it.
    Extend {
        /// Grant id (the id of the request that granted it).
        id: String,
        /// How much longer, e.g. `2h`, `30m`, `1d`.
        #[arg(long, value_name = "DURATION")]
        by: String,
        /// Why (shown to approvers).
        #[arg(long)]
        reason: Option<String>,
    },
    /// End a grant now (an admin, its requester or its holder).
    Revoke {
        /// Grant id.
        id: String,
    },
    /// Revoke every due grant once; safe to run from cron (the approvals service does it by itself).
    Expire,
}

/// `demo` options.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Instead of the walk-through: start the simulator and the approvals service, file a request to approve,
    /// and print the page's URL and the tokens to sign in with; runs until Ctrl-C.
    #[arg(long)]
    pub serve: bool,
}

/// How `serve` writes its log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum LogFormat {
    /// Text for people.
    #[default]
    Text,
    /// One JSON object per line (time, level, message, fields).
    Json,
}

/// `serve` options.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port. Plain HTTP only on loopback; elsewhere pass a certificate.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8443")]
    pub listen: std::net::SocketAddr,
    /// PEM certificate chain to serve HTTPS with (with --tls-key).
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// POST a signed JSON event here on every request change (repeatable; HTTPS, or HTTP on loopback).
    #[arg(long = "webhook", value_name = "URL")]
    pub webhooks: Vec<url::Url>,
    /// File (chmod 600) holding the webhook signing secret (HMAC-SHA256 in X-Rancher-Access-Signature).
    #[arg(long, value_name = "FILE")]
    pub webhook_secret_file: Option<PathBuf>,
    /// The URL people reach the service at, when a TLS-terminating proxy stands in front of it (e.g.
    /// https://approvals.example.com): the page's cookies are then marked Secure.
    #[arg(long, value_name = "URL")]
    pub public_url: Option<url::Url>,
    /// File (chmod 600) holding the Slack app's bot token (xoxb-...): new requests are posted to Slack with
    /// Approve and Deny buttons (with --slack-signing-secret-file).
    #[arg(long, value_name = "FILE")]
    pub slack_bot_token_file: Option<PathBuf>,
    /// File (chmod 600) holding the Slack app's signing secret: button clicks are checked against it.
    #[arg(long, value_name = "FILE")]
    pub slack_signing_secret_file: Option<PathBuf>,
    /// The Slack channel (id, e.g. C0123ABCD) requests are posted to unless their policy names one; without it,
    /// each approver the user mapping names gets a direct message.
    #[arg(long, value_name = "CHANNEL")]
    pub slack_channel: Option<String>,
    /// The Slack Web API's base URL (Slack's government cloud, or a test double).
    #[arg(long, value_name = "URL", env = "SLACK_API_URL")]
    pub slack_api_url: Option<url::Url>,
    /// A JSON file mapping Slack user ids to Rancher user ids ({"U0123ABCD": "u-b4x7k"}); Slack users not in it
    /// are looked up by their profile's email through Rancher's principal search.
    #[arg(long, value_name = "FILE")]
    pub slack_user_map_file: Option<PathBuf>,
    /// File (chmod 600) holding a Teams workflow webhook URL: new requests are posted there as Adaptive Cards
    /// with a link to their page.
    #[arg(long, value_name = "FILE")]
    pub teams_webhook_url_file: Option<PathBuf>,
    /// A directory of policy rule files (YAML, read in file-name order): every request is judged by them when
    /// filed (deny, auto-approve, require approvers, cap durations, ask for a reason, permit break-glass). A file
    /// that does not load stops the start (docs/approvals.md, "Rules in CEL").
    #[arg(long, value_name = "DIR")]
    pub policies: Option<PathBuf>,
    /// File (chmod 600) holding a PagerDuty REST API key: the rules' `oncall("SCHEDULE")` asks PagerDuty who is on
    /// call.
    #[arg(long, value_name = "FILE")]
    pub pagerduty_key_file: Option<PathBuf>,
    /// PagerDuty's API base URL.
    #[arg(long, value_name = "URL", default_value = "https://api.pagerduty.com")]
    pub pagerduty_url: url::Url,
    /// File (chmod 600) holding an Opsgenie API key: `oncall("opsgenie:SCHEDULE")` asks Opsgenie who is on call.
    #[arg(long, value_name = "FILE")]
    pub opsgenie_key_file: Option<PathBuf>,
    /// Opsgenie's API base URL (https://api.eu.opsgenie.com for the EU instance).
    #[arg(long, value_name = "URL", default_value = "https://api.opsgenie.com")]
    pub opsgenie_url: url::Url,
    /// A YAML or JSON file mapping Rancher usernames to the e-mail addresses PagerDuty and Opsgenie know them by
    /// ({"alice": "alice@example.com"}); without an entry, an address equal to the username or whose part before
    /// `@` is the username matches.
    #[arg(long, value_name = "FILE")]
    pub oncall_user_map_file: Option<PathBuf>,
    /// A web sign-in ends after this many minutes without a page.
    #[arg(long, value_name = "MINUTES", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=24 * 60))]
    pub web_idle_minutes: u64,
    /// A web sign-in ends this many hours after it began, however active (a working day by default).
    #[arg(long, value_name = "HOURS", default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=72))]
    pub web_session_hours: u64,
    /// How often overdue requests are expired and executions left in doubt are settled, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub job_interval: u64,
    /// Watch Rancher's role bindings, roles and tokens: each binding made or removed is reported, as
    /// `binding.created`/`binding.deleted` with its request or as `binding.out_of_band` (webhooks, audit, metrics).
    #[arg(long, value_name = "BOOL", default_value_t = false, action = clap::ArgAction::Set)]
    pub watch_access: bool,
    /// With --watch-access=true: file a revoke request (which waits for approval) for each cluster or project
    /// binding made out of band (without it, this does nothing).
    #[arg(long, value_name = "BOOL", default_value_t = false, action = clap::ArgAction::Set)]
    pub revoke_out_of_band: bool,
    /// Also send every audit entry to a syslog collector as RFC 5424: udp://IP:PORT or tcp://IP:PORT, optionally
    /// ?format=ocsf|cloudevents (default jsonl).
    #[arg(long, value_name = "TARGET")]
    pub syslog: Option<rancher_server::config::SyslogTarget>,
    /// On SIGTERM, how long requests, decisions and executions in flight may take to finish, in seconds, before
    /// the service exits anyway (keep it below the orchestrator's grace period; an execution cut off is settled
    /// from its claim by the next start or another replica).
    #[arg(long, value_name = "SECONDS", default_value_t = 45)]
    pub shutdown_grace: u64,
    /// Longest wait for a request's header, in seconds, from the connection's start or the previous answer (so
    /// also how long an idle kept-alive connection stays open).
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub header_timeout: u64,
    /// Most connections open at once (lowered to fit the open-file limit); more are closed at once.
    #[arg(long, value_name = "N", default_value_t = 4096)]
    pub max_connections: usize,
    /// Most connections open at once from one IP address. Behind a reverse proxy every connection comes from the
    /// proxy: set it to --max-connections there.
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub max_connections_per_ip: usize,
    /// How long a webhook event is retried after network errors, 5xx, 408 or 429 before it is dead-lettered, in
    /// seconds (an event the receiver refuses with another 4xx is dead-lettered after 3 tries).
    #[arg(long, value_name = "SECONDS", default_value_t = 3600)]
    pub webhook_retry_for: u64,
    /// File (chmod 600) holding a token `/metrics` asks for as `Authorization: Bearer <token>`.
    #[arg(long, value_name = "FILE")]
    pub metrics_token_file: Option<PathBuf>,
    /// Serve `/metrics` on this address only, apart from the API and the page (HTTPS with --tls-cert; plain HTTP
    /// only on loopback).
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// File (owner-only) keeping the last audit head this service published, checked against the store at start
    /// and on every job run; nothing executes while the store does not verify from it. Default: audit-anchor.json
    /// in the state directory (keep it off the database host: its point is that store writers cannot reach it).
    #[arg(long, value_name = "FILE")]
    pub anchor_file: Option<PathBuf>,
    /// Read settings from this TOML file: each key is the name of a flag above, or of `domain`, `token-file`,
    /// `ca-cert`, `store`, `state-dir` (docs/server.md, "Configuration"). Flags and the environment win over the
    /// file; relative paths in it are taken from the file's directory; secrets only by file (`token-file`, ...).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Send traces to this OpenTelemetry collector over OTLP/HTTP (its base URL, e.g. http://otel-collector:4318;
    /// /v1/traces is added): a span per request with its Rancher calls and store transactions beneath it. Needs a
    /// rancherctl built with the `otel` feature.
    #[arg(long, value_name = "URL", env = "RANCHERCTL_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// Log lines on stderr as text for people, or as one JSON object per line for a log pipeline.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = LogFormat::Text, env = "RANCHERCTL_LOG_FORMAT")]
    pub log_format: LogFormat,
    /// Check the settings (flags, environment, --config file, secret files, TLS files) and exit without starting:
    /// 0 when the service would start with them, else the problem.
    #[arg(long)]
    pub check_config: bool,
}

/// The global options `rancherctl sim` reads (it starts a local simulator: no connection, profile or store).
const SIM_GLOBALS: &[&str] = &["state_dir"];

/// The help of `rancherctl sim` (`long`: `--help`, else `-h`) with only the global options it reads: the others
/// are still accepted, so scripts that pass them keep working, but they do nothing there and are not offered.
pub fn sim_help(long: bool) -> String {
    use clap::CommandFactory as _;
    let root = Cli::command();
    let mut sim = root
        .find_subcommand("sim")
        .cloned()
        .expect("the sim subcommand")
        .bin_name("rancherctl sim")
        .max_term_width(110)
        .disable_version_flag(true);
    for a in root
        .get_arguments()
        .filter(|a| SIM_GLOBALS.contains(&a.get_id().as_str()))
    {
        sim = sim.arg(a.clone().global(false));
    }
    let help = if long {
        sim.render_long_help()
    } else {
        sim.render_help()
    };
    help.to_string()
}

/// Whether `args` (without the program name) ask for the help of `sim`: `sim --help`, `sim -h`, `help sim`.
pub fn asks_sim_help(args: &[String]) -> Option<bool> {
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["help", "sim"] => Some(true),
        ["sim", rest @ ..] if rest.contains(&"--help") => Some(true),
        ["sim", rest @ ..] if rest.contains(&"-h") => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod help_tests {
    use super::*;

    #[test]
    fn sim_help_shows_only_the_flags_sim_uses() {
        for long in [true, false] {
            let help = sim_help(long);
            assert!(
                help.contains("--rancher-version") && help.contains("--state-dir"),
                "{help}"
            );
            for ignored in [
                "--domain",
                "--token-file",
                "--server",
                "--profile",
                "--store",
                "--output",
            ] {
                assert!(!help.contains(ignored), "{ignored} in:\n{help}");
            }
        }
        let words = |s: &str| s.split(' ').map(str::to_string).collect::<Vec<_>>();
        assert_eq!(asks_sim_help(&words("sim --help")), Some(true));
        assert_eq!(asks_sim_help(&words("sim --port 0 -h")), Some(false));
        assert_eq!(asks_sim_help(&words("help sim")), Some(true));
        assert_eq!(asks_sim_help(&words("run --help")), None);
    }
}
