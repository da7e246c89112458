//! The web UI's files, compiled into the binary from `ui/`, each with a
//! version taken from its content.
//!
//! Pages name their scripts and styles with that version (`app.js?v=…`), so
//! a phone keeps a versioned file for a year without asking again, and a new
//! release is fetched at once because its pages name new versions. A file's
//! version covers the versions of the files it names (a script that imports
//! `common.js` changes when `common.js` does). Pages themselves, the
//! dictionaries (fetched by a name built at run time) and the service worker
//! (whose address must stay the same) are not versioned: they are revalidated
//! with their ETag, which costs a few bytes on a bad link.

use std::collections::HashMap;
use std::sync::OnceLock;

use rust_embed::RustEmbed;
use sha2::{Digest, Sha256};

#[derive(RustEmbed)]
#[folder = "ui/"]
struct Embedded;

/// One file as served.
pub struct Asset {
    pub body: Vec<u8>,
    pub mime: String,
    pub etag: String,
    /// The content version (`?v=` value), for files that pages name with it.
    pub version: Option<String>,
}

/// The file at `path` (relative to `ui/`), if there is one.
pub fn get(path: &str) -> Option<&'static Asset> {
    table().get(path)
}

fn table() -> &'static HashMap<String, Asset> {
    static TABLE: OnceLock<HashMap<String, Asset>> = OnceLock::new();
    TABLE.get_or_init(build)
}

/// Scripts and styles are versioned, except the service worker.
fn versioned(path: &str) -> bool {
    (path.ends_with(".js") || path.ends_with(".css")) && path != "sw.js"
}

/// Pages, scripts and styles may name versioned files.
fn may_name_files(path: &str) -> bool {
    path.ends_with(".html") || versioned(path)
}

fn build() -> HashMap<String, Asset> {
    let names: Vec<String> = Embedded::iter().map(|n| n.into_owned()).collect();
    let targets: Vec<&str> = names
        .iter()
        .map(String::as_str)
        .filter(|n| versioned(n))
        .collect();
    let mut bodies = HashMap::new();
    for name in &names {
        rewrite(name, &targets, &mut bodies, &mut Vec::new());
    }
    bodies
        .into_iter()
        .map(|(name, body): (String, Vec<u8>)| {
            let digest = Sha256::digest(&body);
            let version = versioned(&name).then(|| hex::encode(&digest[..6]));
            let asset = Asset {
                mime: Embedded::get(&name).map_or("application/octet-stream".into(), |f| {
                    f.metadata.mimetype().to_owned()
                }),
                etag: format!("\"{}\"", hex::encode(&digest[..16])),
                version,
                body,
            };
            (name, asset)
        })
        .collect()
}

/// Writes `name`'s body into `bodies` with every file it names carrying its
/// version, first doing the same for those files (depth first; `path` holds
/// the files being done, so an import cycle leaves the closing name as is).
fn rewrite(
    name: &str,
    targets: &[&str],
    bodies: &mut HashMap<String, Vec<u8>>,
    path: &mut Vec<String>,
) {
    if bodies.contains_key(name) {
        return;
    }
    let Some(file) = Embedded::get(name) else {
        return;
    };
    let raw = file.data.into_owned();
    let text = match std::str::from_utf8(&raw) {
        Ok(text) if may_name_files(name) => text.to_owned(),
        _ => {
            bodies.insert(name.to_owned(), raw);
            return;
        }
    };
    path.push(name.to_owned());
    let mut text = text;
    for target in targets {
        if *target == name || path.iter().any(|p| p == target) {
            continue;
        }
        let named = references(target);
        if !named.iter().any(|(from, _)| text.contains(from.as_str())) {
            continue;
        }
        rewrite(target, targets, bodies, path);
        let version = hex::encode(&Sha256::digest(&bodies[*target])[..6]);
        for (from, to) in named {
            text = text.replace(&from, &to.replace("{v}", &version));
        }
    }
    path.pop();
    bodies.insert(name.to_owned(), text.into_bytes());
}

/// How a page or script names `target`, and what it becomes: a quoted path,
/// relative (`'common.js'`, `'./common.js'`) or from the root (`"/style.css"`).
fn references(target: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for quote in ['"', '\''] {
        for prefix in ["", "./", "/"] {
            out.push((
                format!("{quote}{prefix}{target}{quote}"),
                format!("{quote}{prefix}{target}?v={{v}}{quote}"),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_name_scripts_and_styles_by_their_current_version() {
        let page = std::str::from_utf8(&get("safety.html").unwrap().body).unwrap();
        let style = get("style.css").unwrap().version.clone().unwrap();
        let script = get("safety.js").unwrap().version.clone().unwrap();
        assert!(page.contains(&format!("href=\"style.css?v={style}\"")));
        assert!(page.contains(&format!("src=\"safety.js?v={script}\"")));
        assert!(get("safety.html").unwrap().version.is_none());
    }

    #[test]
    fn a_script_names_what_it_imports_by_version_so_its_own_version_covers_them() {
        let script = std::str::from_utf8(&get("safety.js").unwrap().body).unwrap();
        let common = get("common.js").unwrap().version.clone().unwrap();
        assert!(script.contains(&format!("'./common.js?v={common}'")));
    }

    #[test]
    fn the_service_worker_keeps_its_address_and_names() {
        let worker = get("sw.js").unwrap();
        assert!(worker.version.is_none());
        assert!(!std::str::from_utf8(&worker.body).unwrap().contains("?v="));
        let common = std::str::from_utf8(&get("common.js").unwrap().body).unwrap();
        assert!(common.contains("register('sw.js')"));
    }
}
