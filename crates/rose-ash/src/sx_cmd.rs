//! `rose-ash sx ...`: evaluate files and expressions, run SX test files,
//! and the REPL.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use sx::{Interp, Value};

#[derive(Args)]
pub struct SxArgs {
    #[command(subcommand)]
    command: SxCommand,
    #[command(flatten)]
    budget: BudgetArgs,
}

/// Limits that stop runaway SX code with a clear error.
#[derive(Args, Clone)]
struct BudgetArgs {
    /// Stop after this many function calls.
    #[arg(long, global = true, env = "ROSE_ASH_SX_MAX_STEPS")]
    max_steps: Option<u64>,
    /// Stop after this many seconds (per evaluated form); 0 for no limit.
    /// A runaway program ends with an error rather than hanging.
    #[arg(
        long,
        global = true,
        default_value_t = 60.0,
        value_parser = parse_seconds,
        env = "ROSE_ASH_SX_TIMEOUT"
    )]
    timeout: f64,
    /// Stop when the heap grows past this many megabytes.
    #[arg(
        long,
        global = true,
        default_value_t = 8192,
        env = "ROSE_ASH_SX_MAX_HEAP_MB"
    )]
    max_heap_mb: usize,
}

#[derive(Subcommand)]
enum SxCommand {
    /// Evaluate SX: every form in order; print the last value's canonical form.
    Eval {
        /// Evaluate this expression instead of a file.
        #[arg(short = 'e', long = "expr", conflicts_with = "file")]
        expr: Option<String>,
        /// The file to evaluate; `-` reads standard input.
        file: Option<PathBuf>,
    },
    /// Run SX test files (deftest / assert=); ends with `N passed, N failed`.
    Test {
        /// Files or directories of `*.sx` tests (default: spec/tests).
        paths: Vec<PathBuf>,
    },
    /// An interactive read-eval-print loop.
    Repl,
}

pub fn run(args: SxArgs) -> ExitCode {
    let result = match args.command {
        SxCommand::Eval { expr, file } => eval(expr, file, &args.budget),
        SxCommand::Test { paths } => crate::sx_test::run(paths, &args.budget.budget()),
        SxCommand::Repl => crate::repl::run(&args.budget.budget()),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eoutln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

impl BudgetArgs {
    pub fn budget(&self) -> sx::Budget {
        sx::Budget {
            max_steps: self.max_steps,
            // 0 means no limit; `parse_seconds` admits only what converts.
            max_time: Some(self.timeout)
                .filter(|&t| t > 0.0)
                .and_then(|t| Duration::try_from_secs_f64(t).ok()),
            max_heap: Some(self.max_heap_mb.saturating_mul(1024 * 1024)),
            ..sx::Budget::default()
        }
    }
}

/// A `--timeout` value: a finite, non-negative number of seconds.
fn parse_seconds(text: &str) -> Result<f64, String> {
    let t: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    if t == 0.0 || Duration::try_from_secs_f64(t).is_ok() {
        Ok(t)
    } else {
        Err(format!(
            "`{text}` is not a usable number of seconds (0 for no limit)"
        ))
    }
}

/// A new interpreter with the web primitives (`render-html`, `aser`, the
/// island API) and the CLI's budget.
pub fn new_interp(budget: &sx::Budget) -> Interp {
    let mut interp = Interp::new();
    if let Err(e) = sx_web::install(&mut interp) {
        // sx-web's own SX is tested; failing to load it is a bug.
        eoutln!("rose-ash: internal error loading the web primitives: {e}");
    }
    interp.budget = budget.clone();
    interp
}

/// The operations the CLI host carries out for `perform`.
pub fn cli_host(_: &mut Interp, req: sx::Request) -> Result<Value, sx::EvalError> {
    // Compare interned symbols, not names: this runs once per perform.
    static OPS: std::sync::OnceLock<[sx::Symbol; 3]> = std::sync::OnceLock::new();
    let [print, println, echo] =
        *OPS.get_or_init(|| ["print", "println", "echo"].map(sx::Symbol::new));
    let op = match &req.op {
        Value::Keyword(k) | Value::Symbol(k) => Some(*k),
        _ => None,
    };
    match op {
        Some(k) if k == print || k == println => {
            let mut line = String::new();
            for (i, a) in req.args.iter().enumerate() {
                if i > 0 {
                    line.push(' ');
                }
                sx::printer::to_str(a, &mut line);
            }
            outln!("{line}");
            Ok(Value::Nil)
        }
        Some(k) if k == echo => Ok(req.args.into_first()),
        _ => Err(sx::EvalError::new(
            sx::ErrorKind::Perform,
            format!(
                "perform {}: the command-line host does not know this operation (it knows :print and :echo)",
                req.op
            ),
        )),
    }
}

fn eval(expr: Option<String>, file: Option<PathBuf>, budget: &BudgetArgs) -> Result<ExitCode> {
    let (src, name) = match (expr, file) {
        (Some(e), _) => (e, "<expr>".to_owned()),
        (None, Some(p)) if p.as_os_str() == "-" => {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
                .context("reading standard input")?;
            (s, "<stdin>".to_owned())
        }
        (None, Some(p)) => {
            let s =
                std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
            (s, p.display().to_string())
        }
        (None, None) => {
            anyhow::bail!("nothing to evaluate: give -e EXPR, a FILE, or - for standard input")
        }
    };
    let mut interp = new_interp(&budget.budget());
    match interp.eval_str_with(&src, &name, &mut cli_host) {
        Ok(v) => {
            match sx::printer::serialize(&v) {
                Ok(s) => outln!("{s}"),
                Err(_) => outln!("{}", sx::printer::display(&v)),
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eoutln!("{e}");
            Ok(ExitCode::FAILURE)
        }
    }
}
