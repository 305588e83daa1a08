//! Static files, served from memory under content-hashed names
//! (`/static/app.3f9a0c1d2e4b.css`) with year-long immutable caching. The
//! plain name (`/static/app.css`) is served too, revalidated on every use.
//! SX code asks for the hashed URL with `(asset-url "app.css")`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use sha3::{Digest, Sha3_256};

use crate::HostError;

/// The browser runtime bundle (client/, built by esbuild; committed, and
/// checked against a fresh build by scripts/test).
pub const CLIENT_BUNDLE: &[u8] = include_bytes!("../../../client/dist/sx.js");

/// One file in memory.
#[derive(Debug, Clone)]
pub struct Asset {
    pub body: Bytes,
    pub content_type: &'static str,
    /// Served under its hashed name (immutable) or its plain name.
    pub immutable: bool,
    /// A strong ETag: the content hash.
    pub etag: String,
}

/// Every static file, by URL path below `/static/`.
#[derive(Debug, Clone, Default)]
pub struct Assets {
    files: HashMap<String, Asset>,
    /// Logical name (`app.css`, `sx.js`) to its hashed URL.
    urls: Vec<(String, String)>,
}

impl Assets {
    /// Loads every file under `dirs` (recursively; later directories win
    /// on equal names).
    pub fn load(dirs: &[PathBuf]) -> Result<Assets, HostError> {
        let mut assets = Assets::default();
        // The browser runtime ships inside the binary, so `rose-ash serve`
        // works from any directory without Node; a built client/dist/sx.js
        // in a static directory (the default) replaces it.
        assets.insert("sx.js", Bytes::from_static(CLIENT_BUNDLE));
        for dir in dirs {
            if !dir.exists() {
                continue;
            }
            let mut stack = vec![dir.clone()];
            while let Some(d) = stack.pop() {
                let entries = std::fs::read_dir(&d).map_err(|e| HostError::Io {
                    what: format!("reading static directory {}", d.display()),
                    source: e,
                })?;
                for entry in entries.filter_map(Result::ok) {
                    let path = entry.path();
                    if path.is_dir() {
                        stack.push(path);
                        continue;
                    }
                    let Ok(rel) = path.strip_prefix(dir) else {
                        continue;
                    };
                    let name = rel
                        .components()
                        .map(|c| c.as_os_str().to_string_lossy())
                        .collect::<Vec<_>>()
                        .join("/");
                    let body = std::fs::read(&path).map_err(|e| HostError::Io {
                        what: format!("reading static file {}", path.display()),
                        source: e,
                    })?;
                    assets.insert(&name, Bytes::from(body));
                }
            }
        }
        assets.urls.sort();
        Ok(assets)
    }

    /// Adds a file under `name` (and its hashed name).
    pub fn insert(&mut self, name: &str, body: Bytes) {
        let digest = Sha3_256::digest(&body);
        let hash: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
        let hashed = hashed_name(name, &hash);
        let content_type = content_type(Path::new(name));
        let asset = Asset {
            body,
            content_type,
            immutable: true,
            etag: format!("\"{hash}\""),
        };
        self.files.insert(
            name.to_owned(),
            Asset {
                immutable: false,
                ..asset.clone()
            },
        );
        self.files.insert(hashed.clone(), asset);
        self.urls.retain(|(n, _)| n != name);
        self.urls
            .push((name.to_owned(), format!("/static/{hashed}")));
    }

    /// The file at `/static/<path>`.
    pub fn get(&self, path: &str) -> Option<&Asset> {
        self.files.get(path)
    }

    /// Logical names and their hashed URLs.
    pub fn urls(&self) -> &[(String, String)] {
        &self.urls
    }
}

/// `dir/app.css` + hash → `dir/app.<hash>.css`.
fn hashed_name(name: &str, hash: &str) -> String {
    let (dir, file) = match name.rsplit_once('/') {
        Some((d, f)) => (format!("{d}/"), f),
        None => (String::new(), name),
    };
    match file.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => format!("{dir}{stem}.{hash}.{ext}"),
        _ => format!("{dir}{file}.{hash}"),
    }
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "html" => "text/html; charset=utf-8",
        "sx" => "text/sx; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "txt" => "text/plain; charset=utf-8",
        "map" => "application/json",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_names() {
        assert_eq!(hashed_name("app.css", "abc"), "app.abc.css");
        assert_eq!(hashed_name("js/sx.js", "abc"), "js/sx.abc.js");
        assert_eq!(hashed_name("LICENSE", "abc"), "LICENSE.abc");
        assert_eq!(hashed_name(".hidden", "abc"), ".hidden.abc");
    }

    #[test]
    fn insert_serves_both_names() {
        let mut a = Assets::default();
        a.insert("app.css", Bytes::from_static(b"body{}"));
        let url = a.urls()[0].1.clone();
        let hashed = url.trim_start_matches("/static/");
        assert!(a.get(hashed).is_some_and(|x| x.immutable));
        assert!(a.get("app.css").is_some_and(|x| !x.immutable));
    }
}
