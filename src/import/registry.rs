//! The shelter registry: the national standard list (自治体標準オープンデータ
//! セット「指定緊急避難場所一覧」) and the GSI layout (国土地理院
//! 指定緊急避難場所データ), told apart by their headers.

use std::collections::HashMap;

use serde::Serialize;

use super::{FileError, Row, RowProblem, Table, number_text, parse_f64, problem};
use crate::domain::municipality::{MunicipalityCode, fold_digit};
use crate::domain::shelter::{Capacity, Hazard, HazardSet, LatLon, ShelterKind, ShelterSite};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RegistryLayout {
    NationalStandard,
    Gsi,
}

#[derive(Clone, Debug)]
pub struct RegistryImport {
    pub layout: RegistryLayout,
    pub sites: Vec<(u64, ShelterSite)>,
    pub problems: Vec<RowProblem>,
}

const CODE: &str = "所在地_全国地方公共団体コード";
const CITY: &str = "所在地_市区町村";
const ADDRESS: &str = "所在地_連結表記";

pub fn parse_registry(text: &str) -> Result<RegistryImport, FileError> {
    let (table, _) = Table::read(text)?;
    let layout = if table.has("ID") && table.has("名称") {
        RegistryLayout::NationalStandard
    } else if table.has("共通ID") && table.has("施設・場所名") {
        RegistryLayout::Gsi
    } else {
        return Err(FileError::Header(
            "unknown layout: expected the national standard list (ID, 名称, 名称_カナ, …, \
             所在地_全国地方公共団体コード, …, 緯度, 経度, …) or the GSI layout (NO, 共通ID, \
             都道府県名及び市町村名, 施設・場所名, 住所, …)"
                .into(),
        ));
    };
    let mut sites = Vec::new();
    let mut problems = Vec::new();
    // Municipality codes by city name, from the rows that carry one: rows
    // without a code take it from rows of the same city in the same file.
    let codes_by_city = codes_by_city(&table);
    for row in &table.rows {
        let site = table.check_width(row).and_then(|()| match layout {
            RegistryLayout::NationalStandard => national_row(&table, row, &codes_by_city),
            RegistryLayout::Gsi => gsi_row(&table, row),
        });
        match site {
            Ok(site) => sites.push((row.line, site)),
            Err(p) => problems.push(p),
        }
    }
    Ok(RegistryImport {
        layout,
        sites,
        problems,
    })
}

fn codes_by_city(table: &Table) -> HashMap<String, MunicipalityCode> {
    table
        .rows
        .iter()
        .filter_map(|row| {
            let code = MunicipalityCode::parse(table.get(row, CODE)?).ok()?;
            Some((table.get(row, CITY)?.to_owned(), code))
        })
        .collect()
}

fn national_row(
    table: &Table,
    row: &Row,
    codes_by_city: &HashMap<String, MunicipalityCode>,
) -> Result<ShelterSite, RowProblem> {
    let id = table
        .get(row, "ID")
        .ok_or_else(|| problem(row, "ID", "an ID is required"))?;
    let name = table
        .get(row, "名称")
        .ok_or_else(|| problem(row, "名称", "a name is required"))?;
    let municipality = match table.get(row, CODE) {
        Some(raw) => MunicipalityCode::parse(raw).map_err(|e| problem(row, CODE, e.to_string()))?,
        None => {
            let address = table.get(row, ADDRESS).unwrap_or_default();
            table
                .get(row, CITY)
                .and_then(|city| codes_by_city.get(city))
                .or_else(|| {
                    codes_by_city
                        .iter()
                        .find(|(city, _)| address.contains(city.as_str()))
                        .map(|(_, code)| code)
                })
                .cloned()
                .ok_or_else(|| {
                    problem(
                        row,
                        CODE,
                        "no municipality code, and no other row of the same city carries one",
                    )
                })?
        }
    };
    let address = table.get(row, ADDRESS).map(str::to_owned).or_else(|| {
        let parts: Vec<&str> = ["所在地_都道府県", CITY, "所在地_町字", "所在地_番地以下"]
            .iter()
            .filter_map(|c| table.get(row, c))
            .collect();
        (!parts.is_empty()).then(|| parts.concat())
    });
    let hazards = hazards(table, row, |h| format!("災害種別_{}", h.japanese()));
    let kind = if name.contains("福祉避難所") {
        ShelterKind::WelfareShelter
    } else {
        ShelterKind::EmergencyEvacuationSite
    };
    let elevation_m = match table.get(row, "標高") {
        Some(raw) => Some(parse_f64(raw).ok_or_else(|| problem(row, "標高", "not a number"))?),
        None => None,
    };
    let capacity = table
        .get(row, "想定収容人数")
        .map(parse_capacity)
        .unwrap_or_default();
    Ok(ShelterSite {
        id: id.to_owned(),
        municipality,
        name: name.to_owned(),
        name_kana: table.get(row, "名称_カナ").map(str::to_owned),
        name_en: table.get(row, "名称_英字").map(str::to_owned),
        address,
        location: location(table, row, "緯度", "経度")?,
        elevation_m,
        phone: table.get(row, "電話番号").map(str::to_owned),
        hazards,
        kind,
        capacity,
        served_area: table.get(row, "対象となる町会・自治会").map(str::to_owned),
    })
}

fn gsi_row(table: &Table, row: &Row) -> Result<ShelterSite, RowProblem> {
    let id = table
        .get(row, "共通ID")
        .ok_or_else(|| problem(row, "共通ID", "an ID is required"))?;
    // Characters 2–6 of 共通ID are the five-digit municipality code.
    let five: String = id.chars().skip(1).take(5).map(fold_digit).collect();
    let municipality = MunicipalityCode::parse(&five).map_err(|e| {
        problem(
            row,
            "共通ID",
            format!("characters 2–6 are no municipality code: {e}"),
        )
    })?;
    let name = table
        .get(row, "施設・場所名")
        .ok_or_else(|| problem(row, "施設・場所名", "a name is required"))?;
    Ok(ShelterSite {
        id: id.to_owned(),
        municipality,
        name: name.to_owned(),
        name_kana: None,
        name_en: None,
        address: table.get(row, "住所").map(str::to_owned),
        location: location(table, row, "緯度", "経度")?,
        elevation_m: None,
        phone: None,
        hazards: hazards(table, row, |h| h.japanese().to_owned()),
        kind: ShelterKind::EmergencyEvacuationSite,
        capacity: Capacity::default(),
        served_area: None,
    })
}

/// A flag column is set when it holds a non-zero number (`1`, `1.0`) or `○`.
fn hazards(table: &Table, row: &Row, column: impl Fn(Hazard) -> String) -> HazardSet {
    Hazard::ALL
        .into_iter()
        .filter(|h| {
            table.get(row, &column(*h)).is_some_and(|v| {
                parse_f64(v).is_some_and(|n| n != 0.0) || matches!(v, "○" | "◯" | "〇")
            })
        })
        .collect()
}

/// Both coordinates or neither; a half or an impossible one is a problem.
pub(crate) fn location(
    table: &Table,
    row: &Row,
    lat_column: &str,
    lon_column: &str,
) -> Result<Option<LatLon>, RowProblem> {
    let (lat, lon) = match (table.get(row, lat_column), table.get(row, lon_column)) {
        (None, None) => return Ok(None),
        (Some(lat), Some(lon)) => (lat, lon),
        (None, Some(_)) => return Err(problem(row, lat_column, "latitude missing")),
        (Some(_), None) => return Err(problem(row, lon_column, "longitude missing")),
    };
    let lat = parse_f64(lat).ok_or_else(|| problem(row, lat_column, "not a number"))?;
    let lon = parse_f64(lon).ok_or_else(|| problem(row, lon_column, "not a number"))?;
    match LatLon::new(lat, lon) {
        Ok(p) => Ok(Some(p)),
        Err(reason) if reason.starts_with("lat") => Err(problem(row, lat_column, reason)),
        Err(reason) => Err(problem(row, lon_column, reason)),
    }
}

/// `屋内1,371人／屋外5,470人（面積の1/2）` → indoor 1371, outdoor 5470; the
/// text is kept. A bare `500人` is indoor.
pub fn parse_capacity(text: &str) -> Capacity {
    let normal = number_text(text);
    let after = |label: &str| -> Option<i64> {
        let rest = &normal[normal.find(label)? + label.len()..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    };
    let (indoor, outdoor) = match (after("屋内"), after("屋外")) {
        (None, None) => (
            normal.strip_suffix('人').unwrap_or(&normal).parse().ok(),
            None,
        ),
        pair => pair,
    };
    Capacity {
        indoor,
        outdoor,
        text: (!text.trim().is_empty()).then(|| text.trim().to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::shelter::Hazard;

    fn reference() -> String {
        std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/geodata/noto-2024-nanao/reference_data.csv"
        ))
        .unwrap()
    }

    #[test]
    fn reads_the_nanao_list() {
        let parsed = parse_registry(&reference()).unwrap();
        assert_eq!(parsed.layout, RegistryLayout::NationalStandard);
        assert_eq!(parsed.problems, vec![]);
        assert_eq!(parsed.sites.len(), 112);
        assert!(
            parsed
                .sites
                .iter()
                .all(|(_, s)| s.municipality.as_str() == "172022")
        );
        assert!(parsed.sites.iter().all(|(_, s)| s.location.is_some()));
        let (_, school) = parsed
            .sites
            .iter()
            .find(|(_, s)| s.id == "CC0000000505")
            .unwrap();
        assert_eq!(school.name, "七尾中学校");
        assert_eq!(
            (school.capacity.indoor, school.capacity.outdoor),
            (Some(1371), Some(5470))
        );
        assert!(school.hazards.contains(Hazard::Tsunami));
        assert!(school.hazards.contains(Hazard::Fire));
        assert!(!school.hazards.contains(Hazard::Volcano));
        assert_eq!(
            school.address.as_deref(),
            Some("石川県七尾市藤橋町辰部５２－１")
        );
    }

    #[test]
    fn reads_shift_jis_and_bom_alike() {
        let text = reference();
        let (sjis, _, unmappable) = encoding_rs::SHIFT_JIS.encode(&text);
        assert!(!unmappable);
        assert_eq!(super::super::decode(&sjis).unwrap(), text);
        let bom = [b"\xEF\xBB\xBF".as_slice(), text.as_bytes()].concat();
        assert_eq!(super::super::decode(&bom).unwrap(), text);
        assert!(matches!(
            super::super::decode(&[0xFF, 0xFE, 0x41, 0]),
            Err(FileError::Encoding(_))
        ));
        assert!(matches!(
            super::super::decode(&[0x80, 0xFF, 0xFD]),
            Err(FileError::Encoding(_))
        ));
    }

    #[test]
    fn reads_the_gsi_layout_and_reports_bad_rows() {
        let text = "NO,共通ID,都道府県名及び市町村名,施設・場所名,住所,洪水,崖崩れ、土石流及び地滑り,高潮,地震,津波,大規模な火事,内水氾濫,火山現象,指定避難所との住所同一,緯度,経度,備考\n\
                    1,E0110000001202,北海道札幌市,中央小学校,札幌市中央区,1,,,1,,,,,,43.05,141.34,\n\
                    2,E0110000001203,北海道札幌市,大通公園,札幌市中央区,,,,1,,1,,,,143.06,141.34,\n\
                    3,E0110000001204,北海道札幌市,短い行\n";
        let parsed = parse_registry(text).unwrap();
        assert_eq!(parsed.layout, RegistryLayout::Gsi);
        assert_eq!(parsed.sites.len(), 1);
        let (line, site) = &parsed.sites[0];
        assert_eq!(*line, 2);
        assert_eq!(site.municipality.as_str(), "011002");
        assert_eq!(
            site.hazards.iter().collect::<Vec<_>>(),
            vec![Hazard::Flood, Hazard::Earthquake]
        );
        assert_eq!(parsed.problems.len(), 2);
        assert_eq!(parsed.problems[0].line, 3);
        assert_eq!(parsed.problems[0].column.as_deref(), Some("緯度"));
        assert_eq!(parsed.problems[1].line, 4);
    }

    #[test]
    fn refuses_unknown_headers_and_empty_files() {
        assert!(matches!(
            parse_registry("name,lat,lon\nA,1,2\n"),
            Err(FileError::Header(_))
        ));
        assert!(matches!(parse_registry(""), Err(FileError::Empty)));
    }

    #[test]
    fn reads_capacity_texts() {
        let c = parse_capacity("屋内2,736人屋外11,700人（面積の1/2）");
        assert_eq!((c.indoor, c.outdoor), (Some(2736), Some(11700)));
        let c = parse_capacity("屋内191人／屋外0人(面積の1/2)");
        assert_eq!((c.indoor, c.outdoor), (Some(191), Some(0)));
        let c = parse_capacity("屋内990人／屋外0人(座席数)");
        assert_eq!((c.indoor, c.outdoor), (Some(990), Some(0)));
        let c = parse_capacity("５００人");
        assert_eq!((c.indoor, c.outdoor), (Some(500), None));
        assert_eq!(parse_capacity(""), Capacity::default());
    }
}
