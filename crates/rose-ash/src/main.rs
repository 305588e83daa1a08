//! `rose-ash`: the one binary. Parses flags and calls the library crates.

/// `println!` that never panics: a closed standard output (as with
/// `rose-ash ... | head`) ends the process quietly instead.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        if writeln!(out, $($arg)*).is_err() {
            std::process::exit(0);
        }
    }};
}

/// `eprintln!` that never panics when standard error is closed.
macro_rules! eoutln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

mod alloc;
mod idp_cmd;
mod repl;
mod serve_cmd;
mod store_cmd;
mod sx_cmd;
mod sx_test;

use clap::{Parser, Subcommand};

#[global_allocator]
// mimalloc: measured against the system allocator (glibc) with bench/http/run
// (12.7k vs 8.4k requests/s, its per-thread heaps suit the SX workers) and
// bench/run (equal or faster on every program); see alloc.rs for why it is
// entered through its plain functions.
static ALLOC: sx::alloc::CountingAlloc<alloc::FastMiMalloc> =
    sx::alloc::CountingAlloc::new(alloc::FastMiMalloc);

/// Rose Ash: a cooperative's web platform, defined in SX.
#[derive(Parser)]
#[command(name = "rose-ash", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Serve the platform over HTTP (SX pages and handlers from lib/).
    Serve(serve_cmd::ServeArgs),
    /// Work with SX code: evaluate, test, or explore in a REPL.
    Sx(sx_cmd::SxArgs),
    /// Write the whole store as an SX stream (objects with history, relations, refs).
    Export(store_cmd::ExportArgs),
    /// Restore a store from an export file.
    Import(store_cmd::ImportArgs),
    /// Operate the identity provider: register OAuth clients.
    Idp(idp_cmd::IdpArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve_cmd::run(args),
        Command::Sx(args) => sx_cmd::run(args),
        Command::Export(args) => store_cmd::export(args),
        Command::Import(args) => store_cmd::import(args),
        Command::Idp(args) => idp_cmd::run(args),
    }
}
