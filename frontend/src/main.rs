//! `tributary`: the one binary. `serve` runs the server; `bench` prints the
//! figures in docs/benchmarks.md.

mod bench;
mod config;
mod demo;
mod pg;
mod repl;
mod serve;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// Tributary: a SQL-first streaming database with a Kafka-compatible broker
/// whose topics live in object storage.
#[derive(Debug, Parser)]
#[command(name = "tributary", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server.
    Serve(config::ServeArgs),
    /// Interactive SQL shell (any Tributary server, over the Postgres protocol).
    Sql(repl::SqlArgs),
    /// Measure performance and print the figures.
    Bench(bench::BenchArgs),
}

impl Command {
    /// The log level when `TRIBUTARY_LOG` is unset: the server tells what it
    /// does; the shell and the benchmarks print only warnings, so their own
    /// output is not buried under the in-process server's.
    fn default_log_level(&self) -> &'static str {
        match self {
            Command::Serve(_) => "info",
            Command::Sql(_) | Command::Bench(_) => "warn",
        }
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("TRIBUTARY_LOG")
                .unwrap_or_else(|_| EnvFilter::new(cli.command.default_log_level())),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve::run(args.resolve()?).await,
            Command::Sql(args) => repl::run(args).await,
            Command::Bench(args) => bench::run(args).await,
        }
    })
}
