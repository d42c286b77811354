//! rollcall-cli: the `rollcall` command line, and the trace replay engines.
//!
//! The commands live one per file under `cmd/`: `demo`, `inspect`,
//! `replay`. [`replay`] runs a recorded trace natively or through the npm
//! package's own `.wasm` under wasmtime; it lives here, not in
//! `rollcall-host`, so a server that embeds presence compiles no JIT.

#![warn(missing_docs)]

mod cmd;
pub mod replay;

use cmd::{demo, inspect, replay as replay_cmd};

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Cluster-wide presence for Socket.IO servers: who is online, per
/// namespace and room, across a cluster, with Redis.
#[derive(Debug, Parser)]
#[command(name = "rollcall", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Simulate a small cluster, crash one node, and check that the counts
    /// heal to the truth after the reap.
    Demo(demo::Args),
    /// Show the nodes, counts and invariant violations of a live keyspace.
    Inspect(inspect::Args),
    /// Re-run a recorded trace and print what the core did at each step,
    /// natively or with the npm package's own .wasm under wasmtime.
    Replay(replay_cmd::Args),
}

/// Parses the command line and runs the command; the exit code says
/// whether it succeeded (0), found a problem (1) or could not run (2).
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rollcall: cannot start the tokio runtime: {e}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(async {
        match cli.command {
            Command::Demo(args) => demo::run(args).await,
            Command::Inspect(args) => inspect::run(args).await,
            Command::Replay(args) => replay_cmd::run(args),
        }
    })
}
