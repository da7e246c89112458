//! xmllint (libxml2) over a document: schema validation and well-formedness,
//! for the XML anpi writes (PFIF, CAP, Atom).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// A schema under `tests/` (e.g. `pfif/pfif-1.4.xsd`).
pub fn schema(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(name)
}

/// `xmllint --noout [--schema xsd] -` on `xml`: Ok, or what it said.
pub fn xmllint(xsd: Option<&str>, xml: &str) -> Result<(), String> {
    let mut command = Command::new("xmllint");
    command.arg("--noout");
    if let Some(xsd) = xsd {
        command.arg("--schema").arg(schema(xsd));
    }
    let mut child = command
        .arg("-")
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("xmllint (Debian: libxml2-utils; ops/test installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(xml.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}
