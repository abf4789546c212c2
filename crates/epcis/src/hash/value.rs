//! Value normalisation of the event hash, reproducing the reference implementation's Python
//! semantics: `str()` of JSON scalars, `str.strip()`, the numeric rewrite through `float()`, the
//! timestamp rewrite through `dateutil`, and the CBV URN to web URI rewrite.

use std::borrow::Cow;

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Timelike};

use super::HashError;
use super::normalise::normalise_identifier;

/// Whether Python's `str.isspace()` holds: Unicode White_Space plus the four information
/// separators U+001C..U+001F.
pub(crate) fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `str.strip()` without arguments.
pub(crate) fn py_strip(s: &str) -> &str {
    s.trim_matches(is_py_space)
}

/// Python's `str()` of a number parsed by Python's `json` module from the JSON text `text`: an
/// integer literal stays an integer, anything with a fraction or exponent becomes a float and is
/// written as `repr(float)`.
pub(crate) fn py_str_of_json_number(text: &str) -> String {
    if text.contains(['.', 'e', 'E']) {
        match text.parse::<f64>() {
            Ok(f) => py_float_repr(f),
            Err(_) => text.to_owned(),
        }
    } else if text.trim_start_matches('-').bytes().all(|b| b == b'0') {
        // "-0" is the integer 0.
        "0".to_owned()
    } else {
        text.to_owned()
    }
}

/// Python's `repr(float)`: the shortest text that reads back as the same float, in positional
/// notation when the decimal exponent is in -4..16 and in exponent notation (`1e-05`, `1e+16`)
/// otherwise.
pub(crate) fn py_float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    // Rust's `{:e}` gives the shortest round-trip digits, for example "-1.2345e2" or "1e-7".
    let formatted = format!("{f:e}");
    let (mantissa, exponent) = formatted.split_once('e').unwrap_or((&formatted, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    // Position of the decimal point relative to the start of `digits`.
    let point = exponent + 1;
    let len = digits.len() as i32;
    if (-4 < point) && (point <= 16) {
        if point <= 0 {
            format!("{sign}0.{}{digits}", "0".repeat((-point) as usize))
        } else if point >= len {
            format!("{sign}{digits}{}.0", "0".repeat((point - len) as usize))
        } else {
            let (int, frac) = digits.split_at(point as usize);
            format!("{sign}{int}.{frac}")
        }
    } else {
        let (first, rest) = digits.split_at(1);
        let rest = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let exp_sign = if exponent < 0 { '-' } else { '+' };
        format!(
            "{sign}{first}{rest}e{exp_sign}{:02}",
            exponent.unsigned_abs()
        )
    }
}

/// The first code point of each run of ten Unicode decimal digits (general category Nd) in the
/// Unicode 14.0 database of the reference's Python 3.11, `0` to `9` in order.
const DECIMAL_ZEROS: [u32; 66] = [
    0x30, 0x660, 0x6F0, 0x7C0, 0x966, 0x9E6, 0xA66, 0xAE6, 0xB66, 0xBE6, 0xC66, 0xCE6, 0xD66,
    0xDE6, 0xE50, 0xED0, 0xF20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90,
    0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0, 0xFF10,
    0x104A0, 0x10D30, 0x11066, 0x110F0, 0x11136, 0x111D0, 0x112F0, 0x11450, 0x114D0, 0x11650,
    0x116C0, 0x11730, 0x118E0, 0x11950, 0x11C50, 0x11D50, 0x11DA0, 0x16A60, 0x16AC0, 0x16B50,
    0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1E140, 0x1E2F0, 0x1E950, 0x1FBF0,
];

/// The ASCII digit of a Unicode decimal digit.
fn decimal_digit(c: char) -> Option<char> {
    let cp = u32::from(c);
    DECIMAL_ZEROS
        .iter()
        .find(|zero| (**zero..**zero + 10).contains(&cp))
        .and_then(|zero| char::from_digit(cp - zero, 10))
}

/// Python's `float(text)` for a string: Unicode decimal digits read as ASCII digits, then an
/// optional sign, digits with single underscores between digits, optional fraction and exponent,
/// or `inf`, `infinity`, `nan` in any case.
fn py_float(text: &str) -> Option<f64> {
    // Most values are identifiers: a first character no number starts with (a sign, a digit, a
    // point, `inf` or `nan`; a non-ASCII one may be a Unicode digit) settles it at once.
    let first = text.chars().find(|c| !is_py_space(*c))?;
    if first.is_ascii() && !matches!(first, '+' | '-' | '.' | '0'..='9' | 'i' | 'I' | 'n' | 'N') {
        return None;
    }
    // Python first maps decimal digits to ASCII and whitespace to spaces; any other non-ASCII
    // character makes the text unreadable.
    let mut ascii = String::with_capacity(text.len());
    for c in text.chars() {
        if is_py_space(c) {
            ascii.push(' ');
        } else if let Some(d) = decimal_digit(c) {
            ascii.push(d);
        } else if c.is_ascii() {
            ascii.push(c);
        } else {
            return None;
        }
    }
    let text = ascii.trim_matches(' ');
    let bytes = text.as_bytes();
    let mut cleaned = String::with_capacity(text.len());
    for (i, c) in text.char_indices() {
        if c == '_' {
            let before = i.checked_sub(1).and_then(|j| bytes.get(j));
            let after = bytes.get(i + 1);
            if !(before.is_some_and(u8::is_ascii_digit) && after.is_some_and(u8::is_ascii_digit)) {
                return None;
            }
        } else {
            cleaned.push(c);
        }
    }
    // Rust's float grammar equals Python's for ASCII input once underscores are gone.
    cleaned.parse::<f64>().ok()
}

/// The reference's `_try_format_numeric`: a value that Python's `float()` reads is rewritten, as an
/// integer when it is integral (`1.0` → `1`, `0042` → `42`) and as `repr(float)` otherwise. An
/// infinite value makes the reference fail on the whole event (Python's `int(inf)` raises).
fn format_numeric(text: &str) -> Result<Cow<'_, str>, HashError> {
    let Some(f) = py_float(text) else {
        return Ok(Cow::Borrowed(text));
    };
    if f.is_nan() {
        return Ok(Cow::Borrowed(text));
    }
    if f.is_infinite() {
        return Err(HashError::ReferenceFails(format!(
            "the value {text:?} is an infinite number"
        )));
    }
    if f.fract() == 0.0 {
        if f == 0.0 {
            return Ok(Cow::Borrowed("0"));
        }
        // An integral f64 printed with no decimals is printed exactly.
        return Ok(Cow::Owned(format!("{f:.0}")));
    }
    Ok(Cow::Owned(py_float_repr(f)))
}

/// What every CBV 1.x URN the reference rewrites starts with.
const CBV_URN: &str = "urn:epcglobal:cbv:";

/// The reference's rewrite of CBV 1.x URNs to CBV 2.0 web URIs, applied anywhere in a value.
/// A value without [`CBV_URN`] is left as it is (no replacement writes that prefix, so none
/// can make a later one match).
fn web_vocabulary(text: &str) -> Cow<'_, str> {
    if !text.contains(CBV_URN) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.replace(
            "urn:epcglobal:cbv:bizstep:",
            "https://ref.gs1.org/cbv/BizStep-",
        )
        .replace("urn:epcglobal:cbv:disp:", "https://ref.gs1.org/cbv/Disp-")
        .replace("urn:epcglobal:cbv:btt:", "https://ref.gs1.org/cbv/BTT-")
        .replace("urn:epcglobal:cbv:sdt:", "https://ref.gs1.org/cbv/SDT-")
        .replace("urn:epcglobal:cbv:er:", "https://ref.gs1.org/cbv/ER-"),
    )
}

/// The reference's `_canonize_value` of a stripped value: web vocabulary, numbers, identifiers.
pub(crate) fn canonize(text: &str) -> Result<String, HashError> {
    let text = web_vocabulary(text);
    let text = format_numeric(&text)?;
    Ok(normalise_identifier(&text).unwrap_or_else(|| text.into_owned()))
}

/// Whether the reference treats a field as a timestamp: its name contains `time` and not
/// `offset`, case-insensitively.
pub(crate) fn is_time_field(name: &str) -> bool {
    let lower = name.to_lowercase();
    lower.contains("time") && !lower.contains("offset")
}

/// A parsed ISO 8601 date-time: the local date and time, microseconds, and the UTC offset in
/// seconds if one was written.
struct Parsed {
    local: NaiveDateTime,
    offset_seconds: Option<i32>,
}

/// Reads exactly `n` ASCII digits.
fn digits(s: &str, n: usize) -> Option<(u32, &str)> {
    let head = s.get(..n)?;
    if !head.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((head.parse().ok()?, &s[n..]))
}

/// Parses the ISO 8601 forms `dateutil.parser.parse` reads the same way: `YYYY-MM-DD` or
/// `YYYYMMDD`, optionally `T`, `t` or a space and `hh:mm[:ss[.f]]` or `hhmm[ss[.f]]` (`,` also
/// marks the fraction, digits beyond the sixth are cut), optionally `Z`, `z`, `±hh`, `±hhmm` or
/// `±hh:mm`.
fn parse_timestamp(text: &str) -> Option<Parsed> {
    let (year, rest) = digits(text, 4)?;
    if year == 0 {
        return None;
    }
    let extended = rest.starts_with('-');
    let rest = if extended { &rest[1..] } else { rest };
    let (month, rest) = digits(rest, 2)?;
    let rest = if extended {
        rest.strip_prefix('-')?
    } else {
        rest
    };
    let (day, rest) = digits(rest, 2)?;
    let date = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)?;

    let (mut hour, mut minute, mut second, mut micro) = (0, 0, 0, 0);
    let mut rest = rest;
    if let Some(time) = rest
        .strip_prefix('T')
        .or_else(|| rest.strip_prefix('t'))
        .or_else(|| rest.strip_prefix(' '))
    {
        let (h, r) = digits(time, 2)?;
        let colon = r.starts_with(':');
        let r = if colon { &r[1..] } else { r };
        let (m, mut r) = digits(r, 2)?;
        hour = h;
        minute = m;
        let has_seconds = if colon {
            r.starts_with(':')
        } else {
            r.as_bytes().first().is_some_and(u8::is_ascii_digit)
        };
        if has_seconds {
            if colon {
                r = &r[1..];
            }
            let (s, r2) = digits(r, 2)?;
            second = s;
            r = r2;
            if let Some(frac) = r.strip_prefix('.').or_else(|| r.strip_prefix(',')) {
                let n = frac.bytes().take_while(u8::is_ascii_digit).count();
                if n == 0 {
                    return None;
                }
                let six: String = frac[..n]
                    .chars()
                    .chain(std::iter::repeat('0'))
                    .take(6)
                    .collect();
                micro = six.parse().ok()?;
                r = &frac[n..];
            }
        }
        rest = r;
    }
    let time = NaiveTime::from_hms_micro_opt(hour, minute, second, micro)?;

    let offset_seconds = match rest {
        "" => None,
        "Z" | "z" => Some(0),
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let r = &rest[1..];
            let (h, r) = digits(r, 2)?;
            let r = r.strip_prefix(':').unwrap_or(r);
            let m = if r.is_empty() {
                0
            } else {
                let (m, r) = digits(r, 2)?;
                if !r.is_empty() {
                    return None;
                }
                m
            };
            if h > 23 || m > 59 {
                return None;
            }
            Some(sign * i32::try_from(h * 3600 + m * 60).ok()?)
        }
    };
    Some(Parsed {
        local: NaiveDateTime::new(date, time),
        offset_seconds,
    })
}

/// The reference's `_fix_time_stamp_format`: a timestamp in UTC with exactly three fractional
/// digits and `Z`. The microseconds are rounded to milliseconds half to even (Python's
/// `round(µs, -3)`), not half up as the reference's README says. A value that does not parse comes
/// back unchanged. A time without offset is read as UTC (the reference reads it in the local time
/// zone of the machine it runs on). The reference fails on the whole event when the rounding
/// reaches the next second or the year leaves 1..=9999.
pub(crate) fn fix_timestamp(text: &str) -> Result<String, HashError> {
    let Some(parsed) = parse_timestamp(text) else {
        return Ok(text.to_owned());
    };
    let offset = i64::from(parsed.offset_seconds.unwrap_or(0));
    let utc = parsed
        .local
        .checked_sub_signed(Duration::seconds(offset))
        .filter(|t| (1..=9999).contains(&t.year()))
        .ok_or_else(|| {
            HashError::ReferenceFails(format!("the timestamp {text:?} is out of range in UTC"))
        })?;
    let micro = utc.nanosecond() / 1000;
    let (millis, remainder) = (micro / 1000, micro % 1000);
    let rounded = if remainder > 500 || (remainder == 500 && millis % 2 == 1) {
        millis + 1
    } else {
        millis
    };
    if rounded == 1000 {
        return Err(HashError::ReferenceFails(format!(
            "the timestamp {text:?} rounds up to the next second"
        )));
    }
    Ok(format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{rounded:03}Z",
        utc.year(),
        utc.month(),
        utc.day(),
        utc.hour(),
        utc.minute(),
        utc.second()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_repr_matches_python() {
        let cases = [
            (1.5, "1.5"),
            (100.0, "100.0"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (-2.25, "-2.25"),
            (0.1 + 0.2, "0.30000000000000004"),
        ];
        for (f, want) in cases {
            assert_eq!(py_float_repr(f), want, "{f}");
        }
    }

    #[test]
    fn numbers_lose_trailing_zeros_as_in_python() {
        let cases = [
            ("1500.50", "1500.5"),
            ("1.0", "1"),
            ("0042", "42"),
            ("-0.0", "0"),
            ("1e3", "1000"),
            ("1_000", "1000"),
            ("1__0", "1__0"),
            ("_1", "_1"),
            ("+5", "5"),
            (".5", "0.5"),
            ("5.", "5"),
            ("nan", "nan"),
            ("0.000015", "1.5e-05"),
            ("12345678901234567890", "12345678901234567168"),
            ("abc", "abc"),
            ("+02:00", "+02:00"),
            ("\u{661}\u{662}", "12"),
            ("\u{ff11}.5", "1.5"),
            (" \t-7 ", "-7"),
            ("\u{2003}3.25", "3.25"),
            ("NaN", "NaN"),
            ("https://id.gs1.org/01/1", "https://id.gs1.org/01/1"),
            ("x1", "x1"),
            ("", ""),
        ];
        for (text, want) in cases {
            assert_eq!(format_numeric(text).unwrap(), want, "{text}");
        }
        assert!(format_numeric("inf").is_err());
        assert!(format_numeric(" -Infinity").is_err());
        assert!(format_numeric("1e400").is_err());
        assert_eq!(py_str_of_json_number("-0"), "0");
        assert_eq!(py_str_of_json_number("2.50"), "2.5");
        assert_eq!(py_str_of_json_number("1E2"), "100.0");
    }

    #[test]
    fn only_cbv_1_urns_are_rewritten() {
        assert_eq!(
            web_vocabulary("urn:epcglobal:cbv:bizstep:shipping"),
            "https://ref.gs1.org/cbv/BizStep-shipping"
        );
        assert_eq!(
            web_vocabulary("a urn:epcglobal:cbv:disp:in_transit and urn:epcglobal:cbv:er:x"),
            "a https://ref.gs1.org/cbv/Disp-in_transit and https://ref.gs1.org/cbv/ER-x"
        );
        assert!(matches!(
            web_vocabulary("urn:epcglobal:cbv:other:x"),
            Cow::Owned(s) if s == "urn:epcglobal:cbv:other:x"
        ));
        assert!(matches!(
            web_vocabulary("https://ref.gs1.org/cbv/BizStep-x"),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn timestamps_as_dateutil_and_python_round() {
        let cases = [
            (
                "2024-03-01T10:00:00.1234567+02:00",
                "2024-03-01T08:00:00.123Z",
            ),
            ("2024-03-01T10:00:00.1245Z", "2024-03-01T10:00:00.124Z"),
            ("2024-03-01T10:00:00.1235Z", "2024-03-01T10:00:00.124Z"),
            ("2024-03-01T10:00:00.0005Z", "2024-03-01T10:00:00.000Z"),
            ("2024-03-01T10:00:00.0015Z", "2024-03-01T10:00:00.002Z"),
            ("2024-03-01T10:00:00z", "2024-03-01T10:00:00.000Z"),
            ("2024-03-01T10:00:00+0530", "2024-03-01T04:30:00.000Z"),
            ("2024-03-01T10:00:00+05", "2024-03-01T05:00:00.000Z"),
            ("2024-03-01T01:00:00+05:00", "2024-02-29T20:00:00.000Z"),
            ("2024-03-01 10:00:00Z", "2024-03-01T10:00:00.000Z"),
            ("2024-03-01T10:00Z", "2024-03-01T10:00:00.000Z"),
            ("20240301T100000Z", "2024-03-01T10:00:00.000Z"),
            ("2024-03-01T10:00:00,5Z", "2024-03-01T10:00:00.500Z"),
            ("2024-03-01", "2024-03-01T00:00:00.000Z"),
            ("2024-03-01T24:00:00Z", "2024-03-01T24:00:00Z"),
            ("2024-03-01T23:59:60Z", "2024-03-01T23:59:60Z"),
            ("2024-03-01T10:00:00.Z", "2024-03-01T10:00:00.Z"),
            ("garbage", "garbage"),
        ];
        for (text, want) in cases {
            assert_eq!(fix_timestamp(text).unwrap(), want, "{text}");
        }
        assert!(fix_timestamp("2024-03-01T10:00:00.9996Z").is_err());
        assert!(fix_timestamp("0001-01-01T00:30:00+01:00").is_err());
    }

    #[test]
    fn strip_matches_python_whitespace() {
        assert_eq!(py_strip("\u{1c} a b\u{a0}\n"), "a b");
    }
}
