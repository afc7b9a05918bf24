//! `zhifu`: the command line that ties Zhifu together.
//!
//! `main.rs` parses arguments and dispatches; the work is in the library
//! crates. Protocol tools (`keygen`, `sign`, `verify-notify`,
//! `verify-response`) live in [`protocol_cmds`], `doctor` in [`doctor`]; `dev` in
//! [`dev_cmd`]; the other backend commands (`serve`, `migrate`,
//! `reconcile`, `webhooks`) in [`server_cmds`]; the sandbox (`sandbox`,
//! `trigger`, `resend`) in [`sandbox_cmd`]. With no subcommand, `zhifu` runs `zhifu dev`: backend,
//! sandbox and checkout on one port, on SQLite.

use std::process::ExitCode;

// mimalloc rather than the platform's allocator: the notification path
// allocates per request (form fields, the body, hyper's buffers), and under
// load glibc's malloc/free took ~10% of the server's CPU (perf, replay
// path); mimalloc measured 1.10–1.13× the replay throughput in the same run.
// On musl (Function Compute, SCF) the system allocator is slower still.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};

mod cert_check;
mod dev_cmd;
mod doctor;
mod listen_cmd;
mod logs_cmd;
mod protocol_cmds;
mod sandbox_cmd;
mod server_cmds;

/// Alipay payments for serverless applications.
#[derive(Debug, Parser)]
#[command(name = "zhifu", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write a new RSA-2048 app key pair (PEM and the console's bare base64);
    /// never over existing key files without `--force`; `--csr` also writes
    /// a certificate signing request for certificate mode.
    Keygen(protocol_cmds::KeygenArgs),
    /// Sign request parameters read from stdin (form-encoded).
    Sign(protocol_cmds::SignArgs),
    /// Verify a notification body read from stdin.
    VerifyNotify(protocol_cmds::VerifyNotifyArgs),
    /// Verify a gateway response body read from stdin.
    VerifyResponse(protocol_cmds::VerifyResponseArgs),
    /// Check an Alipay configuration (key files, or `zhifu serve`'s with
    /// `--env`) and explain what is wrong; `--online` asks the gateway once.
    Doctor(doctor::DoctorArgs),
    /// Run the local Alipay gateway emulator, or trigger/resend notifications.
    Sandbox(sandbox_cmd::SandboxArgs),
    /// Run the payment backend with the sandbox on one port, on SQLite (the default command).
    Dev(dev_cmd::DevArgs),
    /// Run the payment backend in production mode (configuration from the environment).
    Serve(server_cmds::ServeArgs),
    /// Apply the database migrations and exit.
    Migrate(server_cmds::MigrateArgs),
    /// Run one reconcile pass: query stale orders, settle pending refunds, retry webhooks.
    Reconcile(server_cmds::ReconcileArgs),
    /// List merchant webhook events or resend one.
    Webhooks(server_cmds::WebhooksArgs),
    /// Forward the webhooks of a running Zhifu to a local endpoint, signed,
    /// one line per event (`--forward-to URL`).
    Listen(listen_cmd::ListenArgs),
    /// Follow what a running Zhifu does (`logs tail`): gateway answers,
    /// notifications, webhook attempts, new orders, one line each.
    Logs(logs_cmd::LogsArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Keygen(a)) => protocol_cmds::keygen(a),
        Some(Command::Sign(a)) => protocol_cmds::sign(a),
        Some(Command::VerifyNotify(a)) => protocol_cmds::verify_notify(a),
        Some(Command::VerifyResponse(a)) => protocol_cmds::verify_response(a),
        Some(Command::Doctor(a)) => doctor::doctor(a),
        Some(Command::Sandbox(a)) => sandbox_cmd::run(a),
        Some(Command::Dev(a)) => dev_cmd::dev(a),
        Some(Command::Serve(a)) => server_cmds::serve(a),
        Some(Command::Migrate(a)) => server_cmds::migrate(a),
        Some(Command::Reconcile(a)) => server_cmds::reconcile(a),
        Some(Command::Webhooks(a)) => server_cmds::webhooks(a),
        Some(Command::Listen(a)) => listen_cmd::listen(a),
        Some(Command::Logs(a)) => logs_cmd::logs(a),
        None => dev_cmd::dev(dev_cmd::DevArgs::default()),
    }
}
