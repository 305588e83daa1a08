//! `rose-ash sx repl`.

use std::process::ExitCode;

use anyhow::Result;

pub fn run(_budget: &sx::Budget) -> Result<ExitCode> {
    anyhow::bail!("sx repl: not built yet")
}
