//! The SX source files a host loads: read once on the HTTP side (they are
//! plain text, so `Send`) and compiled by every worker into its own
//! interpreter.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::HostError;

/// One source file.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The path as shown in error messages (relative to the working dir
    /// when given so).
    pub name: String,
    pub text: String,
}

/// The files to load, in order: `lib/host/*.sx`, then each app's files.
#[derive(Debug, Clone, Default)]
pub struct Library {
    pub files: Vec<SourceFile>,
}

/// The directories whose `.sx` files make up the library, in load order.
pub fn library_dirs(lib_dir: &Path, apps: &[String]) -> Vec<PathBuf> {
    let mut dirs = vec![lib_dir.join("host")];
    for app in apps {
        if app != "host" {
            dirs.push(lib_dir.join(app));
        }
    }
    dirs
}

/// Every `.sx` file directly in `dir`, sorted by name (subdirectories are
/// apps or helpers of their own and load only when named).
fn sx_files(dir: &Path) -> Result<Vec<PathBuf>, HostError> {
    let entries = std::fs::read_dir(dir).map_err(|e| HostError::Io {
        what: format!("reading SX library directory {}", dir.display()),
        source: e,
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "sx") && p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

impl Library {
    /// Reads the library for `apps` under `lib_dir`.
    pub fn read(lib_dir: &Path, apps: &[String]) -> Result<Library, HostError> {
        let mut files = Vec::new();
        for dir in library_dirs(lib_dir, apps) {
            for path in sx_files(&dir)? {
                let text = std::fs::read_to_string(&path).map_err(|e| HostError::Io {
                    what: format!("reading {}", path.display()),
                    source: e,
                })?;
                files.push(SourceFile {
                    name: path.display().to_string(),
                    text,
                });
            }
        }
        Ok(Library { files })
    }
}

/// Modification times of every file under `dirs`, to notice changes in
/// `--dev` (polling: portable, and cheap for a few hundred files).
pub fn snapshot(dirs: &[PathBuf]) -> Vec<(PathBuf, Option<SystemTime>)> {
    let mut out = Vec::new();
    let mut stack: Vec<PathBuf> = dirs.to_vec();
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let modified = entry.metadata().and_then(|m| m.modified()).ok();
                out.push((path, modified));
            }
        }
    }
    out.sort();
    out
}
