//! Japanese-era timestamps as offices write them: `令和6年9月2日午後6時`,
//! `令和6年1月13日午前6時`, `正午`, `午後1時30分`, sometimes `…時時点`.

use chrono::{DateTime, FixedOffset, NaiveDate, TimeZone, Utc};
use unicode_normalization::UnicodeNormalization;

/// The instant, read as Japan Standard Time (+09:00).
pub fn parse_era_timestamp(s: &str) -> Option<DateTime<Utc>> {
    let s: String = s.nfkc().filter(|c| !c.is_whitespace()).collect();
    let (era_start, rest) = [("令和", 2018), ("平成", 1988)]
        .into_iter()
        .find_map(|(era, offset)| s.find(era).map(|i| (offset, &s[i + era.len()..])))?;
    let rest = rest.replacen("元年", "1年", 1);
    let (year, rest) = rest.split_once('年')?;
    let (month, rest) = rest.split_once('月')?;
    let (day, time) = rest.split_once('日')?;
    let date = NaiveDate::from_ymd_opt(
        era_start + year.parse::<i32>().ok()?,
        month.parse().ok()?,
        day.parse().ok()?,
    )?;
    let (hour, minute) = parse_time(time)?;
    let local = date.and_hms_opt(hour, minute, 0)?;
    let jst = FixedOffset::east_opt(9 * 3600)?;
    Some(
        jst.from_local_datetime(&local)
            .single()?
            .with_timezone(&Utc),
    )
}

/// `午後6時` → (18, 0); `正午` → (12, 0); `午後0時` → (12, 0); empty → midnight.
fn parse_time(time: &str) -> Option<(u32, u32)> {
    let time = time.trim_end_matches("時点").trim_end_matches('点');
    if time.is_empty() {
        return Some((0, 0));
    }
    if time.starts_with("正午") {
        return Some((12, 0));
    }
    let (pm, time) = if let Some(t) = time.strip_prefix("午後") {
        (true, t)
    } else {
        (false, time.strip_prefix("午前").unwrap_or(time))
    };
    let (hour, rest) = time.split_once('時')?;
    let mut hour: u32 = hour.parse().ok()?;
    let minute = match rest.trim_start_matches('時').split_once('分') {
        Some((m, _)) => m.parse().ok()?,
        None => 0,
    };
    if pm && hour < 12 {
        hour += 12;
    }
    (hour < 24 && minute < 60).then_some((hour, minute))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> String {
        parse_era_timestamp(s)
            .map(|t| t.to_rfc3339())
            .unwrap_or_default()
    }

    #[test]
    fn reads_the_forms_offices_write() {
        assert_eq!(at("令和6年9月2日午後6時"), "2024-09-02T09:00:00+00:00");
        assert_eq!(at("令和6年1月13日午前6時"), "2024-01-12T21:00:00+00:00");
        assert_eq!(at("令和6年6月20日正午"), "2024-06-20T03:00:00+00:00");
        assert_eq!(at("令和6年3月1日午後1時30分"), "2024-03-01T04:30:00+00:00");
        assert_eq!(
            at("人数_令和6年1月9日午後6時時点"),
            "2024-01-09T09:00:00+00:00"
        );
        assert_eq!(at("令和６年１月９日午後６時"), "2024-01-09T09:00:00+00:00");
        assert_eq!(at("令和元年5月1日午前0時"), "2019-04-30T15:00:00+00:00");
        assert_eq!(at("平成31年4月30日午後0時"), "2019-04-30T03:00:00+00:00");
        assert_eq!(at("2024-01-09"), "");
        assert_eq!(at("令和6年13月1日"), "");
    }
}
