//! `rose-ash sx repl`: line editing, history, multi-line input; errors are
//! printed and the session goes on.

use std::process::ExitCode;

use anyhow::Result;
use rustyline::DefaultEditor;
use rustyline::error::ReadlineError;
use sx::reader::{self, ReadErrorKind};

use crate::sx_cmd::{cli_host, new_interp};

pub fn run(budget: &sx::Budget) -> Result<ExitCode> {
    let mut interp = new_interp(budget);
    let mut editor = DefaultEditor::new()?;
    let history =
        std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".rose-ash-sx-history"));
    if let Some(h) = &history {
        let _ = editor.load_history(h);
    }
    outln!(
        "SX {} — Ctrl-D to exit; an open ( continues on the next line.",
        env!("CARGO_PKG_VERSION")
    );
    let mut pending = String::new();
    let mut n = 0u64;
    loop {
        let prompt = if pending.is_empty() { "sx> " } else { "... " };
        match editor.readline(prompt) {
            Ok(line) => {
                pending.push_str(&line);
                pending.push('\n');
                match reader::read_all(&pending, "<repl>", false) {
                    Err(e) if incomplete(&e.kind) => continue,
                    _ => {}
                }
                let input = std::mem::take(&mut pending);
                if input.trim().is_empty() {
                    continue;
                }
                let _ = editor.add_history_entry(input.trim_end());
                n += 1;
                match interp.eval_str_with(&input, &format!("<repl:{n}>"), &mut cli_host) {
                    Ok(v) => outln!("{}", sx::printer::display(&v)),
                    Err(e) => eoutln!("{e}"),
                }
            }
            Err(ReadlineError::Interrupted) => {
                pending.clear();
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        }
    }
    if let Some(h) = &history {
        let _ = editor.save_history(h);
    }
    Ok(ExitCode::SUCCESS)
}

/// Errors that mean "keep reading": the form is not finished yet.
fn incomplete(kind: &ReadErrorKind) -> bool {
    matches!(
        kind,
        ReadErrorKind::UnclosedList(_)
            | ReadErrorKind::UnclosedString
            | ReadErrorKind::DanglingPrefix(_)
    )
}
