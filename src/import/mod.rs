//! Reading the CSV files municipalities and the national government publish:
//! the national standard shelter list, the GSI layout, and the open-shelter
//! snapshots offices post after an incident. Files are UTF-8 (with or without
//! BOM) or Shift_JIS; numbers may be full-width; headers vary. A row that
//! cannot be used becomes a [`RowProblem`]; a file that cannot be read at all
//! is a [`FileError`].

mod era;
mod registry;
mod status;
mod supply;

use std::collections::HashMap;

use serde::Serialize;
use unicode_normalization::UnicodeNormalization;
use utoipa::ToSchema;

pub use era::parse_era_timestamp;
pub use registry::{RegistryImport, RegistryLayout, parse_capacity, parse_registry};
pub use status::{SnapshotRow, StatusSnapshot, parse_status_snapshot, snapshot_ids};
pub use supply::{SupplyImport, SupplyRow, parse_supply_points};

/// A per-row problem: the row is skipped, the others go on.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct RowProblem {
    /// Physical line in the file; the header is line 1.
    pub line: u64,
    pub column: Option<String>,
    pub reason: String,
}

/// Why a whole file is refused (nothing of it is applied).
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{0}")]
    Encoding(String),
    #[error("{0}")]
    Header(String),
    #[error("the file is empty: it needs a header line")]
    Empty,
    #[error("the file has more than {MAX_ROWS} rows; split it")]
    TooManyRows,
}

/// Rows one upload may hold: Japan's whole national list is about 110,000
/// sites, so this is room for all of it and a bound on what one request
/// makes the server hold in memory.
pub const MAX_ROWS: usize = 200_000;

/// UTF-8 with or without BOM, else Shift_JIS (CP932, as encoding_rs reads it).
pub fn decode(bytes: &[u8]) -> Result<String, FileError> {
    if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
        return Err(FileError::Encoding(
            "the file is UTF-16; save it as UTF-8 or Shift_JIS".into(),
        ));
    }
    if bytes.contains(&0) {
        // No spreadsheet writes NUL bytes in text; a file with them is
        // binary or damaged, and PostgreSQL could not store them anyway.
        return Err(FileError::Encoding(
            "the file contains NUL bytes: it is not a text CSV".into(),
        ));
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Ok(text.to_owned());
    }
    let (text, had_errors) = encoding_rs::SHIFT_JIS.decode_without_bom_handling(bytes);
    if had_errors {
        return Err(FileError::Encoding(
            "the file is neither UTF-8 nor Shift_JIS".into(),
        ));
    }
    Ok(text.into_owned())
}

/// Physical line numbers from byte offsets, counting `\n` only: the csv
/// crate's own count is one short after CRLF line ends (the files Excel
/// writes), and the line is what an office looks for in its spreadsheet.
struct LineCounter<'a> {
    text: &'a [u8],
    byte: usize,
    line: u64,
}

impl<'a> LineCounter<'a> {
    fn new(text: &'a str) -> Self {
        LineCounter {
            text: text.as_bytes(),
            byte: 0,
            line: 1,
        }
    }

    /// The line of the record starting at `byte` (offsets come in
    /// increasing order). After a CR the reader starts the next record at
    /// the LF: line ends before the first field belong to the lines before.
    fn at(&mut self, byte: u64) -> u64 {
        let mut byte = (byte as usize).min(self.text.len());
        while matches!(self.text.get(byte), Some(b'\r' | b'\n')) {
            byte += 1;
        }
        if byte >= self.byte {
            self.line += self.text[self.byte..byte]
                .iter()
                .filter(|b| **b == b'\n')
                .count() as u64;
            self.byte = byte;
        }
        self.line
    }
}

/// A CSV file read as rows of text, with each row's physical line and
/// columns looked up by header name (files differ in column order).
pub(crate) struct Table {
    header: HashMap<String, usize>,
    pub rows: Vec<Row>,
}

pub(crate) struct Row {
    pub line: u64,
    fields: Vec<String>,
}

impl Table {
    pub fn read(text: &str) -> Result<(Table, Vec<String>), FileError> {
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .has_headers(false)
            .from_reader(text.as_bytes());
        let mut records = reader.records();
        let header_fields: Vec<String> = match records.next() {
            Some(Ok(r)) => r.iter().map(|h| h.trim().to_owned()).collect(),
            Some(Err(e)) => return Err(FileError::Header(format!("unreadable header: {e}"))),
            None => return Err(FileError::Empty),
        };
        if header_fields.iter().all(|h| h.is_empty()) {
            return Err(FileError::Empty);
        }
        let header = header_fields
            .iter()
            .enumerate()
            .map(|(i, h)| (h.clone(), i))
            .collect();
        let mut rows = Vec::new();
        let mut lines = LineCounter::new(text);
        for record in records {
            if rows.len() == MAX_ROWS {
                return Err(FileError::TooManyRows);
            }
            match record {
                Ok(r) => {
                    let line = r.position().map_or(0, |p| lines.at(p.byte()));
                    if r.iter().all(|f| f.trim().is_empty()) {
                        continue;
                    }
                    rows.push(Row {
                        line,
                        fields: r.iter().map(str::to_owned).collect(),
                    });
                }
                Err(e) => {
                    let line = e.position().map_or(0, |p| lines.at(p.byte()));
                    rows.push(Row {
                        line,
                        fields: Vec::new(),
                    });
                }
            }
        }
        Ok((Table { header, rows }, header_fields))
    }

    pub fn has(&self, column: &str) -> bool {
        self.header.contains_key(column)
    }

    /// The trimmed value of `column` in `row`, `None` when absent or empty.
    pub fn get<'a>(&self, row: &'a Row, column: &str) -> Option<&'a str> {
        let i = *self.header.get(column)?;
        let value = row.fields.get(i)?.trim();
        (!value.is_empty()).then_some(value)
    }

    /// A row with fewer fields than the header cannot be trusted column by column.
    pub fn check_width(&self, row: &Row) -> Result<(), RowProblem> {
        if row.fields.len() < self.header.len() {
            return Err(RowProblem {
                line: row.line,
                column: None,
                reason: format!(
                    "the row has {} fields, the header {}",
                    row.fields.len(),
                    self.header.len()
                ),
            });
        }
        Ok(())
    }
}

/// NFKC (full-width digits and commas to ASCII), commas removed: a number as typed.
pub(crate) fn number_text(raw: &str) -> String {
    raw.nfkc()
        .filter(|c| *c != ',')
        .collect::<String>()
        .trim()
        .to_owned()
}

pub(crate) fn parse_f64(raw: &str) -> Option<f64> {
    number_text(raw)
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite())
}

pub(crate) fn problem(row: &Row, column: &str, reason: impl Into<String>) -> RowProblem {
    RowProblem {
        line: row.line,
        column: Some(column.to_owned()),
        reason: reason.into(),
    }
}
