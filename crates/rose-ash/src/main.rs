//! `rose-ash`: the one binary. Parses flags and calls the library crates.

mod repl;
mod sx_cmd;
mod sx_test;

use clap::{Parser, Subcommand};

#[global_allocator]
static ALLOC: sx::alloc::CountingAlloc = sx::alloc::CountingAlloc;

/// Rose Ash: a cooperative's web platform, defined in SX.
#[derive(Parser)]
#[command(name = "rose-ash", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Work with SX code: evaluate, test, or explore in a REPL.
    Sx(sx_cmd::SxArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Sx(args) => sx_cmd::run(args),
    }
}
