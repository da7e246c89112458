//! `anpi replay`: posts a folder of open-shelter snapshots to a running
//! service through the office API, in the order of the moments they describe,
//! with the real pauses between them sped up. Anyone watching the live
//! channels sees the incident's shelters open, fill and close.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::domain::municipality::MunicipalityCode;
use crate::import;

/// What `anpi replay` was asked to do.
#[derive(Clone, Debug)]
pub struct Replay {
    pub dir: PathBuf,
    /// Base URL of the service, e.g. `http://127.0.0.1:8080`.
    pub to: String,
    pub token: String,
    /// How many times faster than real time; 3600 turns an hour into a second.
    pub speed: f64,
    /// The longest pause between two snapshots, however far apart they are.
    pub max_pause: Duration,
    /// By default the municipality of the first snapshot's first shelter.
    pub municipality: Option<MunicipalityCode>,
}

/// One posted snapshot, as reported on stdout.
#[derive(Debug, serde::Serialize)]
pub struct Posted {
    pub file: String,
    pub as_of: Option<DateTime<Utc>>,
    pub open: u64,
    pub closed: u64,
    pub added: u64,
    pub applied: bool,
}

struct Snapshot {
    file: PathBuf,
    as_of: Option<DateTime<Utc>>,
    body: String,
}

#[derive(Deserialize)]
struct Outcome {
    applied: bool,
    open: u64,
    closed: u64,
    added: u64,
}

#[derive(Deserialize)]
struct ShelterMunicipality {
    municipality: String,
}

impl Replay {
    /// Posts every snapshot, calling `report` after each one.
    pub async fn run(&self, mut report: impl FnMut(&Posted)) -> anyhow::Result<Vec<Posted>> {
        if !(self.speed > 0.0 && self.speed.is_finite()) {
            bail!("--speed must be a positive number");
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()?;
        let base = self.to.trim_end_matches('/');
        let files = read_dir(&self.dir)?;
        let municipality = match &self.municipality {
            Some(m) => m.clone(),
            None => discover_municipality(&client, base, &files).await?,
        };
        let snapshots = order(files, &municipality)?;
        let url = format!("{base}/v1/municipalities/{municipality}/shelter-status");
        let mut posted = Vec::with_capacity(snapshots.len());
        let mut previous: Option<DateTime<Utc>> = None;
        for snapshot in snapshots {
            if let (Some(before), Some(now)) = (previous, snapshot.as_of) {
                tokio::time::sleep(self.pause(now - before)).await;
            }
            previous = snapshot.as_of.or(previous);
            let response = client
                .put(&url)
                .bearer_auth(&self.token)
                .header(reqwest::header::CONTENT_TYPE, "text/csv; charset=utf-8")
                .body(snapshot.body)
                .send()
                .await
                .with_context(|| format!("posting {}", snapshot.file.display()))?;
            let status = response.status();
            if !status.is_success() {
                let text = response.text().await.unwrap_or_default();
                bail!("{}: {status}: {text}", snapshot.file.display());
            }
            let outcome: Outcome = response.json().await?;
            let one = Posted {
                file: file_name(&snapshot.file),
                as_of: snapshot.as_of,
                open: outcome.open,
                closed: outcome.closed,
                added: outcome.added,
                applied: outcome.applied,
            };
            report(&one);
            posted.push(one);
        }
        Ok(posted)
    }

    fn pause(&self, real: chrono::TimeDelta) -> Duration {
        let real = real.to_std().unwrap_or_default();
        real.div_f64(self.speed).min(self.max_pause)
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The folder's CSV files, decoded (Shift_JIS or UTF-8), in name order.
fn read_dir(dir: &Path) -> anyhow::Result<Vec<(PathBuf, String)>> {
    let mut paths = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()?;
    paths.retain(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")));
    paths.sort();
    if paths.is_empty() {
        bail!("no .csv snapshots in {}", dir.display());
    }
    paths
        .into_iter()
        .map(|p| {
            let text = import::decode(&std::fs::read(&p)?)
                .with_context(|| format!("decoding {}", p.display()))?;
            Ok((p, text))
        })
        .collect()
}

/// Sorted by the moment each describes; file names break ties and order
/// snapshots that name no moment.
fn order(
    files: Vec<(PathBuf, String)>,
    municipality: &MunicipalityCode,
) -> anyhow::Result<Vec<Snapshot>> {
    let mut snapshots = files
        .into_iter()
        .map(|(file, body)| {
            let parsed = import::parse_status_snapshot(&body, municipality)
                .with_context(|| format!("reading {}", file.display()))?;
            Ok(Snapshot {
                file,
                as_of: parsed.as_of,
                body,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    snapshots.sort_by(|a, b| (a.as_of, &a.file).cmp(&(b.as_of, &b.file)));
    Ok(snapshots)
}

/// Asks the service which municipality the first listed shelter belongs to.
async fn discover_municipality(
    client: &reqwest::Client,
    base: &str,
    files: &[(PathBuf, String)],
) -> anyhow::Result<MunicipalityCode> {
    for (file, body) in files {
        let ids =
            import::snapshot_ids(body).with_context(|| format!("reading {}", file.display()))?;
        for id in ids {
            let response = client
                .get(format!("{base}/v1/shelters/{id}"))
                .send()
                .await?;
            if response.status() == reqwest::StatusCode::NOT_FOUND {
                continue;
            }
            let shelter: ShelterMunicipality = response.error_for_status()?.json().await?;
            return Ok(MunicipalityCode::parse(&shelter.municipality)?);
        }
    }
    bail!("none of the snapshots' shelters is known to {base}; give --municipality")
}
