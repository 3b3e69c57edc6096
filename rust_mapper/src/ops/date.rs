//! Date and time conversion between ISO 8601, RFC 3339, the `/Date(ms)/` JSON date, `YYYYMMDD` and epoch integers.

use std::borrow::Cow;

use crate::value::Value;

/// Seconds of 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z: the supported range (as protobuf Timestamp).
const MIN_SECS: i64 = -62_135_596_800;
const MAX_SECS: i64 = 253_402_300_799;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Auto,
    Date,
    DateTime,
    /// `/Date(ms)/`: milliseconds since the epoch in the Microsoft JSON date form (OData v2).
    MsDate,
    Yyyymmdd,
    EpochMs,
    EpochS,
}

impl Format {
    pub fn parse(name: &str) -> Option<Format> {
        Some(match name {
            "auto" => Format::Auto,
            "date" => Format::Date,
            "datetime" => Format::DateTime,
            // "sap" is the name specs used before "ms_date"; kept so they still compile.
            "ms_date" | "sap" => Format::MsDate,
            "yyyymmdd" => Format::Yyyymmdd,
            "epoch_ms" => Format::EpochMs,
            "epoch_s" => Format::EpochS,
            _ => return None,
        })
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Inverse of [`days_from_civil`].
pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// RFC 3339 in UTC with 0, 3, 6 or 9 fraction digits (as protobuf's JSON mapping). `None` out of range.
pub fn format_rfc3339(secs: i64, nanos: i64) -> Option<String> {
    if !(MIN_SECS..=MAX_SECS).contains(&secs) || !(0..1_000_000_000).contains(&nanos) {
        return None;
    }
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let mut s = String::with_capacity(30);
    push_ymd(&mut s, y, m, d, "-");
    s.push('T');
    push_padded(&mut s, rem / 3600, 2);
    s.push(':');
    push_padded(&mut s, rem / 60 % 60, 2);
    s.push(':');
    push_padded(&mut s, rem % 60, 2);
    if nanos != 0 {
        s.push('.');
        if nanos % 1_000_000 == 0 {
            push_padded(&mut s, nanos / 1_000_000, 3);
        } else if nanos % 1000 == 0 {
            push_padded(&mut s, nanos / 1000, 6);
        } else {
            push_padded(&mut s, nanos, 9);
        }
    }
    s.push('Z');
    Some(s)
}

/// `{y:04}{sep}{m:02}{sep}{d:02}`.
fn push_ymd(s: &mut String, y: i64, m: i64, d: i64, sep: &str) {
    push_padded(s, y, 4);
    s.push_str(sep);
    push_padded(s, m, 2);
    s.push_str(sep);
    push_padded(s, d, 2);
}

/// Append `v` as `format!("{v:0width$}")` would, without the formatting machinery (this runs for every
/// timestamp of every document).
fn push_padded(s: &mut String, v: i64, width: usize) {
    if v < 0 {
        s.push_str(&format!("{v:0width$}"));
        return;
    }
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut n = v.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let digits = &buf[i..];
    for _ in digits.len()..width {
        s.push('0');
    }
    s.extend(digits.iter().map(|&b| char::from(b)));
}

fn digits(b: &[u8], from: usize, n: usize) -> Option<i64> {
    let part = b.get(from..from + n)?;
    if !part.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(part.iter().fold(0i64, |acc, c| acc * 10 + (c - b'0') as i64))
}

fn ymd(y: i64, m: i64, d: i64) -> Option<i64> {
    if !(1..=9999).contains(&y) || !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return None;
    }
    Some(days_from_civil(y, m, d) * 86_400)
}

fn parse_date(s: &str) -> Option<(i64, i64)> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    Some((ymd(digits(b, 0, 4)?, digits(b, 5, 2)?, digits(b, 8, 2)?)?, 0))
}

fn parse_yyyymmdd(s: &str) -> Option<(i64, i64)> {
    let b = s.as_bytes();
    if b.len() != 8 {
        return None;
    }
    Some((ymd(digits(b, 0, 4)?, digits(b, 4, 2)?, digits(b, 6, 2)?)?, 0))
}

fn parse_datetime(s: &str) -> Option<(i64, i64)> {
    let b = s.as_bytes();
    if b.len() < 20 || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let day = parse_date(s.get(..10)?)?.0;
    let (h, mi, se) = (digits(b, 11, 2)?, digits(b, 14, 2)?, digits(b, 17, 2)?);
    if h > 23 || mi > 59 || se > 59 {
        return None;
    }
    let mut i = 19;
    let mut nanos = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let n = i - start;
        if n == 0 || n > 9 {
            return None;
        }
        nanos = digits(b, start, n)? * 10i64.pow((9 - n) as u32);
    }
    let offset = match b.get(i) {
        Some(b'Z') if i + 1 == b.len() => 0,
        Some(c @ (b'+' | b'-')) if i + 6 == b.len() && b[i + 3] == b':' => {
            let (oh, om) = (digits(b, i + 1, 2)?, digits(b, i + 4, 2)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let o = oh * 3600 + om * 60;
            if *c == b'+' {
                o
            } else {
                -o
            }
        }
        _ => return None,
    };
    let secs = day + h * 3600 + mi * 60 + se - offset;
    in_range(secs, nanos)
}

fn parse_ms_date(s: &str) -> Option<(i64, i64)> {
    let inner = s.strip_prefix("/Date(")?.strip_suffix(")/")?;
    let b = inner.as_bytes();
    let mut end = usize::from(b.first() == Some(&b'-'));
    while end < b.len() && b[end].is_ascii_digit() {
        end += 1;
    }
    let rest = &inner[end..];
    // The optional offset (+hhmm) only says which zone to display; the milliseconds are UTC already.
    let offset_ok = rest.is_empty()
        || (rest.len() == 5
            && matches!(rest.as_bytes()[0], b'+' | b'-')
            && rest[1..].bytes().all(|c| c.is_ascii_digit()));
    if !offset_ok {
        return None;
    }
    let ms: i64 = inner[..end].parse().ok()?;
    from_ms(ms)
}

fn from_ms(ms: i64) -> Option<(i64, i64)> {
    in_range(ms.div_euclid(1000), ms.rem_euclid(1000) * 1_000_000)
}

fn in_range(secs: i64, nanos: i64) -> Option<(i64, i64)> {
    (MIN_SECS..=MAX_SECS).contains(&secs).then_some((secs, nanos))
}

fn as_int(v: &Value<'_>) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        Value::Dec(d) | Value::Num(d) => d.to_i64_exact(),
        Value::Str(s) => s.parse().ok(),
        _ => None,
    }
}

/// Convert a date/time value from one format to another.
pub fn convert<'a>(v: Value<'a>, from: Format, to: Format) -> Result<Value<'a>, String> {
    let instant = match from {
        Format::EpochMs | Format::EpochS => {
            let n = as_int(&v).ok_or_else(|| format!("expected an integer epoch, got {}", v.kind()))?;
            let r = if from == Format::EpochMs { from_ms(n) } else { in_range(n, 0) };
            r.ok_or_else(|| format!("epoch {n} outside years 1..9999"))?
        }
        _ => {
            let Value::Str(s) = &v else {
                return Err(format!("expected a date string, got {}", v.kind()));
            };
            let parsed = match from {
                Format::Date => parse_date(s),
                Format::DateTime => parse_datetime(s),
                Format::MsDate => parse_ms_date(s),
                Format::Yyyymmdd => parse_yyyymmdd(s),
                _ => parse_datetime(s)
                    .or_else(|| parse_date(s))
                    .or_else(|| parse_ms_date(s))
                    .or_else(|| parse_yyyymmdd(s)),
            };
            parsed.ok_or_else(|| format!("not a valid date ({}): {s:?}", format_name(from)))?
        }
    };
    let (secs, nanos) = instant;
    Ok(match to {
        Format::EpochMs => Value::Int(secs * 1000 + nanos / 1_000_000),
        Format::EpochS => Value::Int(secs),
        Format::MsDate => Value::Str(Cow::Owned(format!("/Date({})/", secs * 1000 + nanos / 1_000_000))),
        Format::DateTime | Format::Auto => {
            Value::Str(Cow::Owned(format_rfc3339(secs, nanos).ok_or("date out of range")?))
        }
        Format::Date | Format::Yyyymmdd => {
            let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
            let mut s = String::with_capacity(10);
            push_ymd(&mut s, y, m, d, if to == Format::Date { "-" } else { "" });
            Value::Str(Cow::Owned(s))
        }
    })
}

/// Parse any accepted date/time string into (seconds, nanos) for protobuf Timestamp fields.
pub fn parse_timestamp(s: &str) -> Option<(i64, i64)> {
    parse_datetime(s).or_else(|| parse_date(s))
}

fn format_name(f: Format) -> &'static str {
    match f {
        Format::Auto => "date, datetime, /Date(ms)/ or YYYYMMDD",
        Format::Date => "YYYY-MM-DD",
        Format::DateTime => "RFC 3339",
        Format::MsDate => "/Date(ms)/",
        Format::Yyyymmdd => "YYYYMMDD",
        Format::EpochMs => "epoch ms",
        Format::EpochS => "epoch s",
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn push_padded_matches_format() {
        let widths = [0usize, 1, 2, 3, 4, 6, 9, 20, 25];
        let values = [
            0i64,
            1,
            7,
            9,
            10,
            99,
            100,
            999,
            1000,
            9999,
            10_000,
            123_456_789,
            999_999_999,
            i64::MAX,
            -1,
            -42,
            i64::MIN,
        ];
        for &w in &widths {
            for &v in &values {
                let mut s = String::from("x");
                push_padded(&mut s, v, w);
                assert_eq!(s, format!("x{v:0w$}"), "v={v} width={w}");
            }
        }
    }

    #[test]
    fn rfc3339_matches_format() {
        let secs_list = [MIN_SECS, -1, 0, 1, 59, 86_399, 951_782_400, 1_700_000_000, MAX_SECS];
        let nanos_list = [0i64, 1, 5_000_000, 123_000, 123_456_789, 999_999_999, 100_000_000];
        for &secs in &secs_list {
            for &nanos in &nanos_list {
                let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
                let rem = secs.rem_euclid(86_400);
                let mut want = format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}", rem / 3600, rem / 60 % 60, rem % 60);
                if nanos != 0 {
                    if nanos % 1_000_000 == 0 {
                        want.push_str(&format!(".{:03}", nanos / 1_000_000));
                    } else if nanos % 1000 == 0 {
                        want.push_str(&format!(".{:06}", nanos / 1000));
                    } else {
                        want.push_str(&format!(".{nanos:09}"));
                    }
                }
                want.push('Z');
                assert_eq!(format_rfc3339(secs, nanos).as_deref(), Some(want.as_str()));
            }
        }
    }

    use super::*;

    #[test]
    fn ms_date_keeps_its_former_name() {
        assert_eq!(Format::parse("ms_date"), Some(Format::MsDate));
        assert_eq!(Format::parse("sap"), Some(Format::MsDate));
    }

    #[test]
    fn round_trips() {
        let v = convert(Value::Str("2026-11-27T15:22:05.120Z".into()), Format::Auto, Format::MsDate).unwrap();
        assert_eq!(v, Value::Str("/Date(1795792925120)/".into()));
        let back = convert(v, Format::MsDate, Format::DateTime).unwrap();
        assert_eq!(back, Value::Str("2026-11-27T15:22:05.120Z".into()));
        let d = convert(Value::Str("20240229".into()), Format::Yyyymmdd, Format::Date).unwrap();
        assert_eq!(d, Value::Str("2024-02-29".into()));
        assert!(convert(Value::Str("20230229".into()), Format::Yyyymmdd, Format::Date).is_err());
        let o = convert(Value::Str("2026-01-01T01:00:00+02:00".into()), Format::Auto, Format::DateTime).unwrap();
        assert_eq!(o, Value::Str("2025-12-31T23:00:00Z".into()));
    }
}
