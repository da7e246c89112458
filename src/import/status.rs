//! Open-shelter snapshots: the spreadsheet an office posts after an incident,
//! listing each open shelter with its headcount (人数) at a moment (時点).
//! Two header variants exist in the Nanao files: `人数` plus a `時点` column,
//! or (the oldest) the moment inside the header: `人数_令和6年1月9日午後6時時点`.

use std::collections::HashSet;

use chrono::{DateTime, Utc};

use super::registry::{location, parse_capacity};
use super::{FileError, RowProblem, Table, era::parse_era_timestamp, number_text, problem};
use crate::domain::municipality::MunicipalityCode;
use crate::domain::shelter::{HazardSet, ShelterKind, ShelterSite};

#[derive(Clone, Debug)]
pub struct StatusSnapshot {
    /// The moment the snapshot describes (the latest one it names).
    pub as_of: Option<DateTime<Utc>>,
    pub rows: Vec<SnapshotRow>,
    pub problems: Vec<RowProblem>,
}

#[derive(Clone, Debug)]
pub struct SnapshotRow {
    pub line: u64,
    pub id: String,
    pub occupancy: i64,
    /// The site as the row describes it, used when it is not in the registry.
    pub site: ShelterSite,
}

/// The count column: `人数` or `人数_<moment>時点`.
fn count_column(header: &[String]) -> Result<String, FileError> {
    if !header.iter().any(|h| h == "ID") {
        return Err(FileError::Header(
            "unknown layout: a status snapshot starts ID, 地区, 名称, 人数, 時点".into(),
        ));
    }
    header
        .iter()
        .find(|h| h.starts_with("人数"))
        .cloned()
        .ok_or_else(|| FileError::Header("no 人数 (headcount) column".into()))
}

pub fn snapshot_ids(text: &str) -> Result<Vec<String>, FileError> {
    let (table, header) = Table::read(text)?;
    count_column(&header)?;
    Ok(table
        .rows
        .iter()
        .filter_map(|r| table.get(r, "ID").map(str::to_owned))
        .collect())
}

pub fn parse_status_snapshot(
    text: &str,
    municipality: &MunicipalityCode,
) -> Result<StatusSnapshot, FileError> {
    let (table, header) = Table::read(text)?;
    let count = count_column(&header)?;
    let mut as_of = parse_era_timestamp(&count);
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    let mut seen = HashSet::new();
    for row in &table.rows {
        if let Err(p) = table.check_width(row) {
            problems.push(p);
            continue;
        }
        let Some(id) = table.get(row, "ID") else {
            problems.push(problem(row, "ID", "an ID is required"));
            continue;
        };
        if !seen.insert(id.to_owned()) {
            problems.push(problem(row, "ID", format!("{id} is listed twice")));
            continue;
        }
        let occupancy = match table.get(row, &count).map(number_text) {
            Some(n) => match n.parse::<i64>() {
                Ok(n) if n >= 0 => n,
                _ => {
                    problems.push(problem(row, &count, format!("{n:?} is not a headcount")));
                    continue;
                }
            },
            None => {
                problems.push(problem(row, &count, "the headcount is missing"));
                continue;
            }
        };
        if let Some(raw) = table.get(row, "時点") {
            match parse_era_timestamp(raw) {
                Some(t) => as_of = as_of.max(Some(t)),
                None => {
                    problems.push(problem(
                        row,
                        "時点",
                        format!("{raw:?} is not a date and time"),
                    ));
                    continue;
                }
            }
        }
        let location = match location(&table, row, "緯度", "経度") {
            Ok(l) => l,
            Err(p) => {
                problems.push(p);
                continue;
            }
        };
        let name = table.get(row, "名称").unwrap_or(id);
        rows.push(SnapshotRow {
            line: row.line,
            id: id.to_owned(),
            occupancy,
            site: ShelterSite {
                id: id.to_owned(),
                municipality: municipality.clone(),
                name: name.to_owned(),
                name_kana: table.get(row, "名称_カナ").map(str::to_owned),
                name_en: table.get(row, "名称_英字").map(str::to_owned),
                address: table.get(row, "所在地_連結表記").map(str::to_owned),
                location,
                elevation_m: table.get(row, "標高").and_then(super::parse_f64),
                phone: table.get(row, "電話番号").map(str::to_owned),
                hazards: HazardSet::default(),
                kind: ShelterKind::NonDesignated,
                capacity: table
                    .get(row, "想定収容人数")
                    .map(parse_capacity)
                    .unwrap_or_default(),
                served_area: table.get(row, "対象となる町会・自治会").map(str::to_owned),
            },
        });
    }
    Ok(StatusSnapshot {
        as_of,
        rows,
        problems,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history() -> Vec<std::path::PathBuf> {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/geodata/noto-2024-nanao/history"
        );
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        files
    }

    #[test]
    fn reads_all_118_nanao_snapshots() {
        let nanao = MunicipalityCode::parse("172022").unwrap();
        let files = history();
        assert_eq!(files.len(), 118);
        for file in &files {
            let text = std::fs::read_to_string(file).unwrap();
            let snapshot = parse_status_snapshot(&text, &nanao).unwrap();
            assert!(snapshot.as_of.is_some(), "{}", file.display());
            assert_eq!(snapshot.problems, vec![], "{}", file.display());
            // Every data line is an open shelter.
            let lines = text
                .lines()
                .skip(1)
                .filter(|l| !l.trim().is_empty())
                .count();
            assert_eq!(snapshot.rows.len(), lines, "{}", file.display());
        }
        let first = std::fs::read_to_string(&files[0]).unwrap();
        let first = parse_status_snapshot(&first, &nanao).unwrap();
        assert_eq!(
            first.as_of.unwrap().to_rfc3339(),
            "2024-01-09T09:00:00+00:00"
        );
        assert_eq!(first.rows[0].id, "CC0000000518");
        assert_eq!(first.rows[0].occupancy, 180);
    }

    #[test]
    fn reports_bad_rows_with_line_and_column() {
        let nanao = MunicipalityCode::parse("172022").unwrap();
        let text = "ID,地区,名称,人数,時点\n\
                    A,x,a,１２,令和6年1月13日午前6時\n\
                    B,x,b,-3,令和6年1月13日午前6時\n\
                    A,x,a,4,令和6年1月13日午前6時\n\
                    C,x,c,5,someday\n";
        let s = parse_status_snapshot(text, &nanao).unwrap();
        assert_eq!(s.rows.len(), 1);
        assert_eq!(s.rows[0].occupancy, 12);
        let lines: Vec<_> = s
            .problems
            .iter()
            .map(|p| (p.line, p.column.clone().unwrap()))
            .collect();
        assert_eq!(
            lines,
            vec![(3, "人数".into()), (4, "ID".into()), (5, "時点".into())]
        );
        assert!(matches!(
            parse_status_snapshot("名称,人数\n", &nanao),
            Err(FileError::Header(_))
        ));
    }
}
