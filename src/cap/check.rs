//! CAP's value syntax (date-times, coordinates, lists, references) and
//! [`validate`], the model checks that the types alone cannot make.

use chrono::{DateTime, FixedOffset};

use super::{Alert, Area, Reference, Scope};
use crate::error::FieldError;

/// Parses CAP's dateTime: exactly `YYYY-MM-DDThh:mm:ss±hh:mm`.
pub fn parse_time(s: &str) -> Result<DateTime<FixedOffset>, String> {
    const SHAPE: &[u8] = b"dddd-dd-ddTdd:dd:dd+dd:dd";
    let shaped = s.len() == SHAPE.len()
        && s.bytes().zip(SHAPE).all(|(c, &p)| match p {
            b'd' => c.is_ascii_digit(),
            b'+' => c == b'+' || c == b'-',
            _ => c == p,
        });
    if !shaped {
        return Err(format!(
            "'{s}' is not a CAP date-time: write YYYY-MM-DDThh:mm:ss with an explicit offset, \
             e.g. 2024-01-01T16:10:00+09:00 ('Z' and fractional seconds are not allowed)"
        ));
    }
    DateTime::parse_from_rfc3339(s).map_err(|e| format!("'{s}' is not a real date-time: {e}"))
}

/// Formats a time the CAP way; UTC becomes `-00:00` as the spec asks.
pub fn format_time(t: &DateTime<FixedOffset>) -> String {
    let local = t.format("%Y-%m-%dT%H:%M:%S");
    if t.offset().local_minus_utc() == 0 {
        format!("{local}-00:00")
    } else {
        format!("{local}{}", t.format("%:z"))
    }
}

/// `[+-]digits[.digits]` — the number shape allowed in coordinates and heights.
pub(super) fn is_number(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (int, frac) = s.split_once('.').unwrap_or((s, "0"));
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    digits(int) && digits(frac)
}

fn point(p: &str) -> Result<(f64, f64), String> {
    let (lat, lon) = p
        .split_once(',')
        .ok_or_else(|| format!("'{p}' is not a \"lat,lon\" pair"))?;
    let coord = |v: &str, limit: f64, what: &str| match v.parse::<f64>() {
        Ok(x) if is_number(v) && x.abs() <= limit => Ok(x),
        _ => Err(format!(
            "'{v}' in '{p}' is not a {what} between -{limit} and {limit}"
        )),
    };
    Ok((
        coord(lat, 90.0, "latitude")?,
        coord(lon, 180.0, "longitude")?,
    ))
}

/// Checks a polygon: ≥ 4 space-separated `lat,lon` points, closed (first == last).
pub fn check_polygon(s: &str) -> Result<(), String> {
    let points = s
        .split_whitespace()
        .map(point)
        .collect::<Result<Vec<_>, _>>()?;
    if points.len() < 4 {
        return Err(format!(
            "needs at least 4 \"lat,lon\" points separated by spaces, the first repeated \
             as the last; found {}",
            points.len()
        ));
    }
    if points.first() != points.last() {
        return Err("is not closed: the last point must repeat the first".into());
    }
    Ok(())
}

/// Checks a circle: `lat,lon radius` with the radius in kilometres.
pub fn check_circle(s: &str) -> Result<(), String> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    let [centre, radius] = parts[..] else {
        return Err(format!("'{s}' is not \"lat,lon radius_km\""));
    };
    point(centre)?;
    if !is_number(radius) || radius.starts_with('-') {
        return Err(format!(
            "radius '{radius}' is not a non-negative number of kilometres"
        ));
    }
    Ok(())
}

/// Splits CAP's whitespace-separated list; `"double quotes"` group words.
pub(super) fn split_list(s: &str) -> Vec<String> {
    let (mut out, mut cur, mut quoted) = (Vec::new(), String::new(), false);
    for c in s.chars() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

pub(super) fn join_list(items: &[String]) -> String {
    let quote = |i: &String| match i.contains(char::is_whitespace) {
        true => format!("\"{i}\""),
        false => i.clone(),
    };
    items.iter().map(quote).collect::<Vec<_>>().join(" ")
}

pub(super) fn parse_reference(triple: &str) -> Result<Reference, String> {
    let mut parts = triple.splitn(3, ',');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(sender), Some(identifier), Some(sent))
            if !sender.is_empty() && !identifier.is_empty() =>
        {
            Ok(Reference {
                sender: sender.into(),
                identifier: identifier.into(),
                sent: parse_time(sent)?,
            })
        }
        _ => Err("expected sender,identifier,sent".into()),
    }
}

/// CAP forbids whitespace, commas, `<` and `&` in identifier and sender.
fn is_id_token(s: &str) -> bool {
    !s.is_empty() && !s.contains(|c: char| c.is_whitespace() || matches!(c, ',' | '<' | '&'))
}

/// xs:language: `[a-zA-Z]{1,8}(-[a-zA-Z0-9]{1,8})*`.
fn is_language(s: &str) -> bool {
    s.split('-').enumerate().all(|(i, part)| {
        (1..=8).contains(&part.len())
            && part
                .chars()
                .all(|c| c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()))
    })
}

// ---------------------------------------------------------------- validate

/// Error list whose fields are `path.name`, e.g. `info[0]` + `event`.
#[derive(Default)]
pub(super) struct Errors(pub(super) Vec<FieldError>);

impl Errors {
    pub(super) fn add(&mut self, path: &str, name: &str, message: impl Into<String>) {
        let field = if path.is_empty() {
            name.to_owned()
        } else {
            format!("{path}.{name}")
        };
        self.0.push(FieldError::new(field, message));
    }
}

/// Checks the rules that the types alone cannot: CAP's token and list
/// syntax, polygons/circles, and required-but-empty text. [`read`](fn@super::read)
/// runs it too.
pub fn validate(alert: &Alert) -> Vec<FieldError> {
    const ID: &str = "must be non-empty and contain no spaces, commas, '<' or '&'";
    let mut e = Errors::default();
    if !is_id_token(&alert.identifier) {
        e.add("", "identifier", ID);
    }
    if !is_id_token(&alert.sender) {
        e.add("", "sender", ID);
    }
    if alert.scope == Scope::Restricted && alert.restriction.is_none() {
        e.add("", "restriction", "is required when scope is Restricted");
    }
    if alert.scope == Scope::Private && alert.addresses.is_empty() {
        e.add("", "addresses", "is required when scope is Private");
    }
    for (name, list) in [
        ("addresses", &alert.addresses),
        ("incidents", &alert.incidents),
    ] {
        if list.iter().any(|i| i.contains('"') || i.trim().is_empty()) {
            e.add(
                "",
                name,
                "entries must be non-empty and must not contain '\"'",
            );
        }
    }
    for (i, r) in alert.references.iter().enumerate() {
        if !is_id_token(&r.sender) || !is_id_token(&r.identifier) {
            e.add(
                "",
                "references",
                format!("entry {}: sender and identifier {ID}", i + 1),
            );
        }
    }
    for (i, info) in alert.infos.iter().enumerate() {
        let p = format!("info[{i}]");
        if !is_language(&info.language) {
            e.add(&p, "language", "must be a language tag such as ja-JP");
        }
        if info.category.is_empty() {
            e.add(&p, "category", "at least one category is required");
        }
        if info.event.trim().is_empty() {
            e.add(&p, "event", "must not be empty");
        }
        for (j, area) in info.areas.iter().enumerate() {
            validate_area(&mut e, &format!("{p}.area[{j}]"), area);
        }
    }
    e.0
}

fn validate_area(e: &mut Errors, p: &str, area: &Area) {
    if area.area_desc.trim().is_empty() {
        e.add(p, "areaDesc", "must name the place; it is empty");
    }
    for (k, polygon) in area.polygons.iter().enumerate() {
        if let Err(m) = check_polygon(polygon) {
            e.add(p, &format!("polygon[{k}]"), m);
        }
    }
    for (k, circle) in area.circles.iter().enumerate() {
        if let Err(m) = check_circle(circle) {
            e.add(p, &format!("circle[{k}]"), m);
        }
    }
    for (name, v) in [("altitude", area.altitude), ("ceiling", area.ceiling)] {
        if v.is_some_and(|v| !v.is_finite()) {
            e.add(p, name, "must be a finite number of feet");
        }
    }
    if area.ceiling.is_some() && area.altitude.is_none() {
        e.add(p, "ceiling", "may only be given together with altitude");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_keep_their_offset() {
        let t = parse_time("2024-01-01T16:10:00+09:00").unwrap();
        assert_eq!(format_time(&t), "2024-01-01T16:10:00+09:00");
        let utc = parse_time("2024-01-01T07:10:00-00:00").unwrap();
        assert_eq!(utc, t);
        assert_eq!(format_time(&utc), "2024-01-01T07:10:00-00:00");
        assert_eq!(
            format_time(&parse_time("2024-01-01T07:10:00+00:00").unwrap()),
            "2024-01-01T07:10:00-00:00"
        );
        assert_eq!(
            format_time(&parse_time("2024-06-30T20:00:00-04:30").unwrap()),
            "2024-06-30T20:00:00-04:30"
        );
    }

    #[test]
    fn lists_quote_entries_with_spaces() {
        let items = vec!["ops@anpi".to_string(), "七尾 消防".to_string()];
        assert_eq!(join_list(&items), "ops@anpi \"七尾 消防\"");
        assert_eq!(split_list(" ops@anpi  \"七尾 消防\"\n"), items);
    }
}
