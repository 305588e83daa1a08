//! `rose-ash sx test`: runs SX test files written with lib/core/test.sx.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

pub fn run(_paths: Vec<PathBuf>, _budget: &sx::Budget) -> Result<ExitCode> {
    anyhow::bail!("sx test: not built yet")
}
