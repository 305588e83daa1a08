//! `rose-ash export` and `rose-ash import`: the whole store as an SX stream.

use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;

/// Where the store is: the same flags as `rose-ash serve`.
#[derive(Args, Clone)]
pub struct StoreArgs {
    /// Directory for local data; the SQLite store is `<DIR>/store.sqlite`.
    #[arg(long, env = "ROSE_ASH_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Use PostgreSQL instead of SQLite (`postgres://user@host/db`).
    #[arg(long, env = "ROSE_ASH_DATABASE_URL")]
    pub database_url: Option<String>,
}

impl StoreArgs {
    fn open(&self) -> Result<store::Store> {
        store::Store::open(self.database_url.as_deref(), &self.data_dir).with_context(
            || match &self.database_url {
                Some(_) => "cannot open the PostgreSQL store".to_owned(),
                None => format!(
                    "cannot open the store in {}",
                    self.data_dir.join("store.sqlite").display()
                ),
            },
        )
    }
}

#[derive(Args)]
pub struct ExportArgs {
    /// Write to this file instead of standard output.
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Args)]
pub struct ImportArgs {
    /// The export file to restore.
    file: PathBuf,
    #[command(flatten)]
    store: StoreArgs,
}

pub fn export(args: ExportArgs) -> ExitCode {
    report(run_export(args))
}

pub fn import(args: ImportArgs) -> ExitCode {
    report(run_import(args))
}

fn report(r: Result<()>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eoutln!("rose-ash: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_export(args: ExportArgs) -> Result<()> {
    let store = args.store.open()?;
    let counts = match &args.out {
        Some(path) => {
            // Write beside the target and rename, so a failed export never
            // leaves a half-written file under the real name.
            let tmp = path.with_extension("partial");
            let file = std::fs::File::create(&tmp)
                .with_context(|| format!("cannot create {}", tmp.display()))?;
            let mut w = std::io::BufWriter::new(file);
            let c = store::export::export(&store, &mut w)?;
            w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
            std::fs::rename(&tmp, path).with_context(|| {
                format!("cannot rename {} to {}", tmp.display(), path.display())
            })?;
            c
        }
        None => {
            let mut w = std::io::BufWriter::new(std::io::stdout().lock());
            store::export::export(&store, &mut w)?
        }
    };
    eoutln!(
        "exported {} objects ({} revisions), {} relations, {} refs",
        counts.objects,
        counts.revisions,
        counts.relations,
        counts.refs
    );
    Ok(())
}

fn run_import(args: ImportArgs) -> Result<()> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let store = args.store.open()?;
    let tty = std::io::stderr().is_terminal();
    let mut last_shown = std::time::Instant::now();
    let mut bar = |p: store::export::Progress| {
        if !tty || p.total < 1000 {
            return;
        }
        let finished = p.done == p.total;
        if !finished && last_shown.elapsed().as_millis() < 100 {
            return;
        }
        last_shown = std::time::Instant::now();
        let width = 30u64;
        let filled = (p.done * width).checked_div(p.total).unwrap_or(width);
        let pct = (p.done * 100).checked_div(p.total).unwrap_or(100);
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\rimporting [{}{}] {pct:>3}% {}/{} records",
            "#".repeat(filled as usize),
            " ".repeat((width - filled) as usize),
            p.done,
            p.total
        );
        if finished {
            let _ = writeln!(err);
        }
    };
    let name = args.file.display().to_string();
    let counts = store::export::import(&store, &text, &name, &mut bar)?;
    eoutln!(
        "imported {} objects ({} revisions), {} relations, {} refs",
        counts.objects,
        counts.revisions,
        counts.relations,
        counts.refs
    );
    Ok(())
}
