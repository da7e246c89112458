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
//!
//! Pages also carry their Japanese text (the default language) in the HTML:
//! every element marked `data-i18n="key"` is filled from the dictionaries
//! here, so a page reads before its scripts and dictionary arrive.

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
    let japanese = default_texts(&names);
    for (name, body) in bodies.iter_mut() {
        if name.ends_with(".html")
            && let Ok(page) = std::str::from_utf8(body)
        {
            *body = with_texts(page, &japanese).into_bytes();
        }
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

/// Every Japanese text of every dictionary part (`i18n/ja.json`,
/// `i18n/*/ja.json`; each key lives in one part only).
fn default_texts(names: &[String]) -> HashMap<String, String> {
    let mut texts = HashMap::new();
    for name in names
        .iter()
        .filter(|n| n.starts_with("i18n/") && n.ends_with("/ja.json") || *n == "i18n/ja.json")
    {
        let Some(file) = Embedded::get(name) else {
            continue;
        };
        if let Ok(part) = serde_json::from_slice::<HashMap<String, String>>(&file.data) {
            texts.extend(part);
        }
    }
    texts
}

/// `page` with each empty element marked `data-i18n="key"` holding its text
/// (templates with `{placeholders}` are left to the scripts).
fn with_texts(page: &str, texts: &HashMap<String, String>) -> String {
    const MARK: &str = "data-i18n=\"";
    let mut out = String::with_capacity(page.len() + page.len() / 2);
    let mut rest = page;
    while let Some(at) = rest.find(MARK) {
        let (before, after) = rest.split_at(at + MARK.len());
        out.push_str(before);
        rest = after;
        let Some(end) = rest.find('"') else { continue };
        let key = &rest[..end];
        let Some(close) = rest.find('>') else {
            continue;
        };
        out.push_str(&rest[..=close]);
        rest = &rest[close + 1..];
        if rest.starts_with("</")
            && let Some(text) = texts.get(key).filter(|t| !t.contains('{'))
        {
            out.push_str(&escape(text));
        }
    }
    out.push_str(rest);
    out
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
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
    fn pages_read_in_japanese_before_any_script_runs() {
        let page = std::str::from_utf8(&get("safety.html").unwrap().body).unwrap();
        let texts = default_texts(&Embedded::iter().map(|n| n.into_owned()).collect::<Vec<_>>());
        let title = &texts["s_title"];
        assert!(
            page.contains(&format!("data-i18n=\"s_title\">{title}</")),
            "{page}"
        );
        let marked = with_texts(
            "<p data-i18n=\"x\"></p><b data-i18n=\"y\">kept</b>",
            &HashMap::from([
                ("x".to_owned(), "<安否>".to_owned()),
                ("y".to_owned(), "no".to_owned()),
            ]),
        );
        assert_eq!(
            marked,
            "<p data-i18n=\"x\">&lt;安否&gt;</p><b data-i18n=\"y\">kept</b>"
        );
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
