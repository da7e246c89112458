//! A municipality's list of supply points as CSV (documented in
//! `docs/supply.md`). Each column has an English and a Japanese header:
//!
//! | column | 見出し | value |
//! |---|---|---|
//! | `id` | `ID` | optional; the same id again replaces that point |
//! | `name` | `名称` | required |
//! | `kind` | `種別` | `water`/`給水`, `food`/`食料`, `goods`/`物資`, `bath`/`入浴`, `charging`/`充電`, `toilets`/`トイレ`, `first_aid`/`医療`, `laundry`/`洗濯`, `other`/`その他` |
//! | `lat`, `lon` | `緯度`, `経度` | required, decimal degrees |
//! | `address` | `住所` | optional |
//! | `status` | `状況` | `open`/`開設` (default), `paused`/`一時停止`, `closed`/`終了` |
//! | `hours` | `時間` | windows separated by `;`: `10:00-16:00` (daily), `mon,wed 09:00-12:00`, `2024-01-10 13:00-15:00` |
//! | `stock` | `在庫` | items separated by `;`: `水:plenty`, `パン:low`, `おむつ:out` (or 十分 / 残りわずか / なし) |
//! | `note` | `備考` | optional |

use sha2::{Digest, Sha256};
use unicode_normalization::UnicodeNormalization;

use super::{FileError, Row, RowProblem, Table, parse_f64, problem};
use crate::domain::municipality::MunicipalityCode;
use crate::domain::supply::{
    Day, Stock, StockLevel, SupplyChange, SupplyKind, SupplyStatus, Window, parse_time,
};

/// One usable row: the id it is stored under and what it says.
pub struct SupplyRow {
    pub line: u64,
    pub id: String,
    pub change: SupplyChange,
}

/// The rows that can be used, and a problem for each that cannot.
pub struct SupplyImport {
    pub rows: Vec<SupplyRow>,
    pub problems: Vec<RowProblem>,
}

const COLUMNS: [(&str, &str); 10] = [
    ("id", "ID"),
    ("name", "名称"),
    ("kind", "種別"),
    ("lat", "緯度"),
    ("lon", "経度"),
    ("address", "住所"),
    ("status", "状況"),
    ("hours", "時間"),
    ("stock", "在庫"),
    ("note", "備考"),
];

pub fn parse_supply_points(
    text: &str,
    municipality: &MunicipalityCode,
) -> Result<SupplyImport, FileError> {
    let (table, _) = Table::read(text)?;
    let header = |english: &str| {
        COLUMNS
            .iter()
            .find(|(e, _)| *e == english)
            .map(|(e, j)| if table.has(e) { *e } else { *j })
            .expect("a known column")
    };
    for required in ["name", "kind", "lat", "lon"] {
        let column = header(required);
        if !table.has(column) {
            return Err(FileError::Header(format!(
                "the header has no {required:?} (or {:?}) column",
                COLUMNS.iter().find(|(e, _)| *e == required).unwrap().1
            )));
        }
    }
    let mut out = SupplyImport {
        rows: Vec::new(),
        problems: Vec::new(),
    };
    let mut seen = std::collections::HashSet::new();
    for row in &table.rows {
        if let Err(p) = table.check_width(row) {
            out.problems.push(p);
            continue;
        }
        match read_row(&table, row, &header, municipality) {
            Ok(r) if !seen.insert(r.id.clone()) => out.problems.push(problem(
                row,
                header("id"),
                format!("{} is listed twice", r.id),
            )),
            Ok(r) => out.rows.push(r),
            Err(p) => out.problems.push(p),
        }
    }
    Ok(out)
}

fn read_row(
    table: &Table,
    row: &Row,
    header: &dyn Fn(&str) -> &'static str,
    municipality: &MunicipalityCode,
) -> Result<SupplyRow, RowProblem> {
    let get = |c: &str| table.get(row, header(c));
    let name = get("name").ok_or_else(|| problem(row, header("name"), "a name is required"))?;
    let kind_text = get("kind").unwrap_or_default();
    let kind = SupplyKind::parse(kind_text).ok_or_else(|| {
        problem(
            row,
            header("kind"),
            format!("{kind_text:?} is not a kind (給水, 食料, 物資, 入浴, 充電, トイレ, 医療, 洗濯, その他)"),
        )
    })?;
    let coordinate = |c: &str| {
        get(c)
            .and_then(parse_f64)
            .ok_or_else(|| problem(row, header(c), "a number in decimal degrees is required"))
    };
    let (lat, lon) = (coordinate("lat")?, coordinate("lon")?);
    let status = match get("status") {
        None => SupplyStatus::Open,
        Some(s) => SupplyStatus::parse(s).ok_or_else(|| {
            problem(
                row,
                header("status"),
                format!("{s:?} is not open, paused or closed"),
            )
        })?,
    };
    let hours = match get("hours") {
        None => Vec::new(),
        Some(h) => parse_hours(h).map_err(|why| problem(row, header("hours"), why))?,
    };
    let stock = match get("stock") {
        None => Vec::new(),
        Some(s) => parse_stock(s).map_err(|why| problem(row, header("stock"), why))?,
    };
    // Without an id, one is made from the name: the same list uploaded
    // again replaces its points rather than adding them twice.
    let id = get("id").map(str::to_owned).unwrap_or_else(|| {
        let digest = Sha256::digest(format!("{municipality}|{name}"));
        format!("{municipality}-{}", hex::encode(&digest[..6]))
    });
    Ok(SupplyRow {
        line: row.line,
        id,
        change: SupplyChange {
            municipality: Some(municipality.as_str().to_owned()),
            kind: Some(kind),
            name: Some(name.to_owned()),
            lat: Some(lat),
            lon: Some(lon),
            address: get("address").map(str::to_owned),
            status: Some(status),
            hours: Some(hours),
            stock: Some(stock),
            note: get("note").map(str::to_owned),
            ..SupplyChange::default()
        },
    })
}

fn split_list(s: &str) -> impl Iterator<Item = &str> {
    s.split([';', '；', '\n'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
}

/// `10:00-16:00; mon,wed 09:00-12:00; 2024-01-10 13:00-15:00`.
pub fn parse_hours(text: &str) -> Result<Vec<Window>, String> {
    let text: String = text.nfkc().collect::<String>().replace(['〜', '~'], "-");
    split_list(&text)
        .map(|part| {
            let (when, span) = match part.rsplit_once(' ') {
                Some((when, span)) => (Some(when.trim()), span),
                None => (None, part),
            };
            let (opens, closes) = span
                .split_once('-')
                .and_then(|(a, b)| Some((parse_time(a)?, parse_time(b)?)))
                .ok_or_else(|| format!("{part:?}: give the hours as HH:MM-HH:MM"))?;
            let mut window = Window {
                date: None,
                days: Vec::new(),
                opens,
                closes,
            };
            match when {
                None => {}
                Some(w) => match w.parse() {
                    Ok(date) => window.date = Some(date),
                    Err(_) => {
                        window.days = w
                            .split(',')
                            .map(|d| Day::parse(d).ok_or_else(|| format!("{part:?}: {d:?} is not a day (mon … sun) or a date (2024-01-10)")))
                            .collect::<Result<_, _>>()?;
                    }
                },
            }
            Ok(window)
        })
        .collect()
}

/// `水:plenty; パン:low`.
pub fn parse_stock(text: &str) -> Result<Vec<Stock>, String> {
    split_list(text)
        .map(|part| {
            let (item, level) = part
                .rsplit_once([':', '：'])
                .ok_or_else(|| format!("{part:?}: give each item as item:level"))?;
            let level = StockLevel::parse(level).ok_or_else(|| {
                format!("{part:?}: the level is plenty, low or out (十分, 残りわずか, なし)")
            })?;
            Ok(Stock {
                item: item.trim().to_owned(),
                level,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_and_stock_as_offices_write_them() {
        let w = parse_hours("１０：００〜１６：００; mon,fri 09:00-12:00; 2024-01-10 20:00-02:00")
            .unwrap();
        assert_eq!(w.len(), 3);
        assert_eq!(w[1].days, vec![Day::Mon, Day::Fri]);
        assert_eq!(w[2].date.unwrap().to_string(), "2024-01-10");
        assert!(parse_hours("10時から").is_err());
        assert!(parse_hours("someday 10:00-11:00").is_err());
        let s = parse_stock("水:plenty；パン：残りわずか").unwrap();
        assert_eq!(s[1].item, "パン");
        assert_eq!(s[1].level, StockLevel::Low);
        assert!(parse_stock("水").is_err());
    }

    #[test]
    fn a_list_with_japanese_headers_and_one_bad_row() {
        let nanao = MunicipalityCode::parse("172022").unwrap();
        let csv = "名称,種別,緯度,経度,時間,在庫\n\
                   七尾市役所,給水,37.0430,136.9671,09:00-17:00,2Lペットボトル:low\n\
                   田鶴浜地区コミュニティセンター,おにぎり,37.06,136.89,,\n\
                   能登島支所,入浴,37.12,137.00,,\n";
        let parsed = parse_supply_points(csv, &nanao).unwrap();
        assert_eq!(parsed.rows.len(), 2);
        assert_eq!(parsed.problems.len(), 1);
        assert_eq!(parsed.problems[0].line, 3);
        assert_eq!(parsed.problems[0].column.as_deref(), Some("種別"));
        // The same name gets the same id on every upload.
        let again = parse_supply_points(csv, &nanao).unwrap();
        assert_eq!(parsed.rows[0].id, again.rows[0].id);
        assert!(parse_supply_points("name,kind\nx,water\n", &nanao).is_err());
        // Lines as a spreadsheet numbers them, with Excel's CRLF line ends too.
        let crlf = parse_supply_points(&csv.replace('\n', "\r\n"), &nanao).unwrap();
        assert_eq!(crlf.problems[0].line, 3);
    }
}
