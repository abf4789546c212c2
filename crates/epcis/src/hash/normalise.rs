//! Identifier normalisation exactly as the reference implementation's `dl_normaliser` does it.
//!
//! Every value of an event goes through this. EPC URNs of the GS1 schemes become Digital Links on
//! `https://id.gs1.org` with a computed check digit; Digital Links on any domain are moved to
//! `https://id.gs1.org`, lose their query string, their consumer product variant and (beside a
//! serial) their lot. The rules are the reference's regular expressions, reproduced here by hand,
//! including where they differ from [`crate::gs1`]'s strict canonical form:
//!
//! - Nothing is verified: a Digital Link with a wrong check digit is normalised as it is.
//! - An EPC URN component is not decoded: its escapes are kept as written (`%2f` stays lower
//!   case), and only `! ( ) * + , :` are percent-encoded on the way to the Digital Link (`'`, `;`
//!   and `=` stay raw).
//! - A Digital Link whose qualifier values hold a `%` (any percent-encoded character) fails the
//!   reference's final syntax check and is left entirely unchanged, query string and domain
//!   included; so is a serial or lot longer than 20 characters, and so is any string without a
//!   `.` in it (such as a Digital Link on a dotless host).
//! - The reference's domain rewrite looks for the first of `/00/`, `/01/`, `/253/`, … in that
//!   order of keys, not of position, and its GTIN padding replaces every `/01/` in the string.
//! - For GRAI and GDTI URNs with a 12-digit company prefix, the reference's patterns expect an
//!   extra `.`; a GDTI serial may have at most 19 characters.
//!
//! Python's `\d` also matches non-ASCII decimal digits; here only ASCII digits count.

use lotline_domain::gs1::mod10;

use crate::memo::{Memo, remembered};

/// The reference's `__web_uri_percent_encoder`: only `! ( ) * + , :` are escaped.
fn web_uri_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '!' => out.push_str("%21"),
            '(' => out.push_str("%28"),
            ')' => out.push_str("%29"),
            '*' => out.push_str("%2A"),
            '+' => out.push_str("%2B"),
            ',' => out.push_str("%2C"),
            ':' => out.push_str("%3A"),
            _ => out.push(c),
        }
    }
    out
}

/// A byte slice of an ASCII string, clamped as Python's slicing clamps.
fn sl(s: &str, start: usize, end: usize) -> &str {
    let end = end.min(s.len());
    s.get(start.min(end)..end).unwrap_or("")
}

/// Python's `s[start:end]` on characters, with negative indices counted from the end.
fn py_slice(s: &str, start: isize, end: Option<isize>) -> String {
    let chars: Vec<char> = s.chars().collect();
    let len = chars.len() as isize;
    let resolve = |i: isize| if i < 0 { (len + i).max(0) } else { i.min(len) };
    let a = resolve(start);
    let b = end.map_or(len, resolve);
    if a >= b {
        return String::new();
    }
    chars[a as usize..b as usize].iter().collect()
}

/// Python's `s.find(sub)` in characters: -1 when absent.
fn py_find(s: &str, sub: &str) -> isize {
    s.find(sub)
        .map_or(-1, |byte| s[..byte].chars().count() as isize)
}

/// The digits of a key body followed by their check digit.
fn keyed(body: &str) -> String {
    format!("{body}{}", mod10(body.as_bytes()))
}

/// One character of an EPC URN component as the reference's patterns allow it: an escape
/// `%2[125-9A-Fa-f]`, `%3[0-9A-Fa-f]`, `%4[1-9A-Fa-f]`, `%5[0-9AaFf]`, `%6[1-9A-Fa-f]` or
/// `%7[0-9Aa]`, or one of ``!')(*+,.0-9:;=A-Za-z_-``.
fn gs3a3_escape(hi: u8, lo: u8) -> bool {
    let hex = lo.is_ascii_hexdigit();
    match hi {
        b'2' => matches!(lo, b'1' | b'2' | b'5'..=b'9' | b'A'..=b'F' | b'a'..=b'f'),
        b'3' => hex,
        b'4' | b'6' => hex && lo != b'0',
        b'5' => lo.is_ascii_digit() || matches!(lo, b'A' | b'a' | b'F' | b'f'),
        b'7' => lo.is_ascii_digit() || matches!(lo, b'A' | b'a'),
        _ => false,
    }
}

fn gs3a3_raw(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!')(*+,.:;=_-".contains(&b)
}

/// One character of a CPI component: `%2[3dfDF]`, `%3[0-9]`, `%4[1-9A-Fa-f]`, `%5[0-9Aa]` or
/// one of `0-9A-Z-`.
fn cpi_escape(hi: u8, lo: u8) -> bool {
    match hi {
        b'2' => matches!(lo, b'3' | b'd' | b'f' | b'D' | b'F'),
        b'3' => lo.is_ascii_digit(),
        b'4' => lo.is_ascii_hexdigit() && lo != b'0',
        b'5' => lo.is_ascii_digit() || matches!(lo, b'A' | b'a'),
        _ => false,
    }
}

fn cpi_raw(b: u8) -> bool {
    b.is_ascii_digit() || b.is_ascii_uppercase() || b == b'-'
}

/// Counts the component characters of `s` if all of it is component characters.
fn count_chars(s: &str, escape: fn(u8, u8) -> bool, raw: fn(u8) -> bool) -> Option<usize> {
    let b = s.as_bytes();
    let (mut i, mut n) = (0, 0);
    while i < b.len() {
        if b[i] == b'%' {
            let (hi, lo) = (*b.get(i + 1)?, *b.get(i + 2)?);
            if !escape(hi, lo) {
                return None;
            }
            i += 3;
        } else if raw(b[i]) {
            i += 1;
        } else {
            return None;
        }
        n += 1;
    }
    Some(n)
}

/// Whether all of `s` is 1 to `max` GS3A3 component characters.
fn gs3a3(s: &str, max: usize) -> bool {
    count_chars(s, gs3a3_escape, gs3a3_raw).is_some_and(|n| (1..=max).contains(&n))
}

fn all_digits(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit())
}

/// Whether the bytes `range` of `s` exist and are all ASCII digits.
fn digits_at(s: &str, range: std::ops::Range<usize>) -> bool {
    s.as_bytes()
        .get(range)
        .is_some_and(|b| b.iter().all(u8::is_ascii_digit))
}

/// Whether `s` is `dd.dd.` followed by what `tail` accepts (the piece and total of an ITIP).
fn piece_and_total(s: &str, tail: impl Fn(&str) -> bool) -> bool {
    let b = s.as_bytes();
    digits_at(s, 0..2)
        && b.get(2) == Some(&b'.')
        && digits_at(s, 3..5)
        && b.get(5) == Some(&b'.')
        && s.get(6..).is_some_and(tail)
}

/// How a pattern treats a 12-digit company prefix, which leaves no digits for the reference.
#[derive(Clone, Copy, PartialEq)]
enum Twelve {
    /// The pattern has no 12-digit alternative.
    Never,
    /// `\d{12}\.`: the prefix and its dot.
    Dot,
    /// `\d{12}\.\.`: the prefix and two dots (GRAI, GDTI).
    TwoDots,
}

/// Matches `CompanyPrefix.Reference` at the start of `body`, where the prefix has 6 to 12 digits
/// and both together `total`. Returns the prefix length and what follows.
fn company_and_reference(body: &str, total: usize, twelve: Twelve) -> Option<(usize, &str)> {
    let len = body.bytes().take_while(u8::is_ascii_digit).count();
    if !(6..=12).contains(&len) || body.as_bytes().get(len) != Some(&b'.') {
        return None;
    }
    if len == total {
        return match twelve {
            Twelve::Never => None,
            Twelve::Dot => Some((len, &body[len + 1..])),
            Twelve::TwoDots => body[len + 1..].strip_prefix('.').map(|after| (len, after)),
        };
    }
    let reference = body.get(len + 1..len + 1 + (total - len))?;
    all_digits(reference).then(|| (len, &body[len + 1 + (total - len)..]))
}

/// The reference's conversions of EPC URNs, or `None` if `uri` is none of them.
fn epc_urn(uri: &str, partition: usize) -> Option<String> {
    let root = "https://id.gs1.org";
    // The GTIN of an SGTIN-shaped URN whose company prefix starts at `start`.
    let gtin = |start: usize| {
        let cp = sl(uri, start, partition);
        let item = sl(uri, partition + 1, partition + 1 + (13 - cp.len()));
        keyed(&format!(
            "{}{cp}{}",
            sl(item, 0, 1),
            sl(item, 1, item.len())
        ))
    };
    // The 12 digits of a GLN-shaped URN (GLN, GRAI, GDTI, SGCN bodies).
    let body12 = |start: usize| {
        let cp = sl(uri, start, partition);
        format!(
            "{cp}{}",
            sl(uri, partition + 1, partition + 1 + (12 - cp.len()))
        )
    };

    if let Some(body) = uri.strip_prefix("urn:epc:id:sgtin:") {
        let (_, after) = company_and_reference(body, 13, Twelve::Never)?;
        return (after.strip_prefix('.').is_some_and(|c| gs3a3(c, 20))).then(|| {
            format!(
                "{root}/01/{}/21/{}",
                gtin(17),
                web_uri_encode(sl(uri, 32, uri.len()))
            )
        });
    }
    if let Some(body) = uri.strip_prefix("urn:epc:id:sscc:") {
        let (_, after) = company_and_reference(body, 17, Twelve::Never)?;
        return after.is_empty().then(|| {
            let cp = sl(uri, 16, partition);
            let raw = format!(
                "{}{cp}{}",
                sl(uri, partition + 1, partition + 2),
                sl(uri, partition + 2, uri.len())
            );
            format!("{root}/00/{}", keyed(&raw))
        });
    }
    if let Some(body) = uri.strip_prefix("urn:epc:id:sgln:") {
        let (_, after) = company_and_reference(body, 12, Twelve::Dot)?;
        return (after.strip_prefix('.').is_some_and(|c| gs3a3(c, 20))).then(|| {
            let gln = keyed(&body12(16));
            let extension = sl(uri, 30, uri.len());
            if extension == "0" {
                format!("{root}/414/{gln}")
            } else {
                format!("{root}/414/{gln}/254/{}", web_uri_encode(extension))
            }
        });
    }
    if let Some(body) = uri.strip_prefix("urn:epc:id:grai:") {
        let (_, after) = company_and_reference(body, 12, Twelve::TwoDots)?;
        return (after.strip_prefix('.').is_some_and(|c| gs3a3(c, 16))).then(|| {
            let raw = keyed(&format!("0{}", body12(16)));
            format!(
                "{root}/8003/{raw}{}",
                web_uri_encode(sl(uri, 30, uri.len()))
            )
        });
    }
    if let Some(body) = uri.strip_prefix("urn:epc:id:giai:") {
        let len = body.bytes().take_while(u8::is_ascii_digit).count();
        let ok = (6..=12).contains(&len)
            && body[len..]
                .strip_prefix('.')
                .is_some_and(|c| gs3a3(c, 30 - len));
        return ok.then(|| {
            format!(
                "{root}/8004/{}{}",
                sl(uri, 16, partition),
                web_uri_encode(sl(uri, partition + 1, uri.len()))
            )
        });
    }
    for (prefix, ai) in [("urn:epc:id:gsrn:", "8018"), ("urn:epc:id:gsrnp:", "8017")] {
        if let Some(body) = uri.strip_prefix(prefix) {
            let (_, after) = company_and_reference(body, 17, Twelve::Never)?;
            return after.is_empty().then(|| {
                let raw = format!(
                    "{}{}",
                    sl(uri, prefix.len(), partition),
                    sl(uri, partition + 1, uri.len())
                );
                format!("{root}/{ai}/{}", keyed(&raw))
            });
        }
    }
    if let Some(body) = uri.strip_prefix("urn:epc:id:gdti:") {
        let (_, after) = company_and_reference(body, 12, Twelve::TwoDots)?;
        return gs3a3(after, 20).then(|| {
            format!(
                "{root}/253/{}{}",
                keyed(&body12(16)),
                web_uri_encode(sl(uri, 30, uri.len()))
            )
        });
    }
    if let Some(body) = uri.strip_prefix("urn:epc:id:cpi:") {
        let len = body.bytes().take_while(u8::is_ascii_digit).count();
        let ok = (6..=12).contains(&len)
            && body[len..].strip_prefix('.').is_some_and(|rest| {
                rest.rsplit_once('.').is_some_and(|(reference, serial)| {
                    count_chars(reference, cpi_escape, cpi_raw)
                        .is_some_and(|n| (1..=30 - len).contains(&n))
                        && (1..=12).contains(&serial.len())
                        && all_digits(serial)
                })
            });
        return ok.then(|| {
            let separator = uri.rfind('.').unwrap_or(partition);
            let raw = format!(
                "{}{}",
                sl(uri, 15, partition),
                sl(uri, partition + 1, separator)
            );
            format!(
                "{root}/8010/{}/8011/{}",
                web_uri_encode(&raw),
                sl(uri, separator + 1, uri.len())
            )
        });
    }
    if let Some(body) = uri.strip_prefix("urn:epc:id:sgcn:") {
        let (_, after) = company_and_reference(body, 12, Twelve::Dot)?;
        let ok = after
            .strip_prefix('.')
            .is_some_and(|serial| (1..=12).contains(&serial.len()) && all_digits(serial));
        return ok.then(|| {
            format!(
                "{root}/255/{}{}",
                keyed(&body12(16)),
                sl(uri, 30, uri.len())
            )
        });
    }
    if let Some(body) = uri.strip_prefix("urn:epc:id:ginc:") {
        let len = body.bytes().take_while(u8::is_ascii_digit).count();
        let ok = (6..=12).contains(&len)
            && body[len..]
                .strip_prefix('.')
                .is_some_and(|c| gs3a3(c, 30 - len));
        return ok.then(|| {
            format!(
                "{root}/401/{}{}",
                sl(uri, 16, partition),
                web_uri_encode(sl(uri, partition + 1, uri.len()))
            )
        });
    }
    if let Some(body) = uri.strip_prefix("urn:epc:id:gsin:") {
        let (_, after) = company_and_reference(body, 16, Twelve::Never)?;
        return after.is_empty().then(|| {
            let raw = format!(
                "{}{}",
                sl(uri, 16, partition),
                sl(uri, partition + 1, uri.len())
            );
            format!("{root}/402/{}", keyed(&raw))
        });
    }
    if let Some(body) = uri.strip_prefix("urn:epc:id:itip:") {
        let (_, after) = company_and_reference(body, 13, Twelve::Never)?;
        let ok = after
            .strip_prefix('.')
            .is_some_and(|r| piece_and_total(r, |serial| gs3a3(serial, 20)));
        return ok.then(|| {
            format!(
                "{root}/8006/{}{}{}/21/{}",
                gtin(16),
                sl(uri, 31, 33),
                sl(uri, 34, 36),
                web_uri_encode(sl(uri, 37, uri.len()))
            )
        });
    }
    if let Some(body) = uri.strip_prefix("urn:epc:id:upui:") {
        let (_, after) = company_and_reference(body, 13, Twelve::Never)?;
        return (after.strip_prefix('.').is_some_and(|c| gs3a3(c, 28))).then(|| {
            format!(
                "{root}/01/{}/235/{}",
                gtin(16),
                web_uri_encode(sl(uri, 31, uri.len()))
            )
        });
    }
    if let Some(body) = uri.strip_prefix("urn:epc:id:pgln:") {
        let (_, after) = company_and_reference(body, 12, Twelve::Dot)?;
        return after
            .is_empty()
            .then(|| format!("{root}/417/{}", keyed(&body12(16))));
    }
    if let Some(body) = uri.strip_prefix("urn:epc:class:lgtin:") {
        let (_, after) = company_and_reference(body, 13, Twelve::Never)?;
        return (after.strip_prefix('.').is_some_and(|c| gs3a3(c, 20))).then(|| {
            format!(
                "{root}/01/{}/10/{}",
                gtin(20),
                web_uri_encode(sl(uri, 35, uri.len()))
            )
        });
    }
    if let Some(body) = uri.strip_prefix("urn:epc:idpat:sgtin:") {
        let (_, after) = company_and_reference(body, 13, Twelve::Never)?;
        return (after == ".*").then(|| format!("{root}/01/{}", gtin(20)));
    }
    for (prefix, ai, zero) in [
        ("urn:epc:idpat:grai:", "8003", "0"),
        ("urn:epc:idpat:gdti:", "253", ""),
        ("urn:epc:idpat:sgcn:", "255", ""),
    ] {
        if let Some(body) = uri.strip_prefix(prefix) {
            let (_, after) = company_and_reference(body, 12, Twelve::TwoDots)?;
            return (after == ".*")
                .then(|| format!("{root}/{ai}/{}", keyed(&format!("{zero}{}", body12(19)))));
        }
    }
    if let Some(body) = uri.strip_prefix("urn:epc:idpat:cpi:") {
        let len = body.bytes().take_while(u8::is_ascii_digit).count();
        let ok = (6..=12).contains(&len)
            && body[len..].strip_prefix('.').is_some_and(|rest| {
                rest.strip_suffix(".*").is_some_and(|reference| {
                    count_chars(reference, cpi_escape, cpi_raw)
                        .is_some_and(|n| (1..=30 - len).contains(&n))
                })
            });
        return ok.then(|| {
            let separator = uri.rfind('.').unwrap_or(partition);
            let raw = format!(
                "{}{}",
                sl(uri, 18, partition),
                sl(uri, partition + 1, separator)
            );
            format!("{root}/8010/{}", web_uri_encode(&raw))
        });
    }
    if let Some(body) = uri.strip_prefix("urn:epc:idpat:itip:") {
        let (_, after) = company_and_reference(body, 13, Twelve::Never)?;
        let ok = after
            .strip_prefix('.')
            .is_some_and(|r| piece_and_total(r, |rest| rest == "*"));
        return ok.then(|| {
            format!(
                "{root}/8006/{}{}{}",
                gtin(19),
                sl(uri, 34, 36),
                sl(uri, 37, 39)
            )
        });
    }
    if let Some(body) = uri.strip_prefix("urn:epc:idpat:upui:") {
        let (_, after) = company_and_reference(body, 13, Twelve::Never)?;
        return (after == ".*").then(|| format!("{root}/01/{}", gtin(19)));
    }
    None
}

/// Key AIs (and their old short names) the reference recognises in a Digital Link path.
const PATH_KEYS: [&str; 28] = [
    "01", "gtin", "8006", "itip", "8010", "cpid", "414", "gln", "417", "party", "8017", "gsrnp",
    "8018", "gsrn", "255", "gcn", "00", "sscc", "253", "gdti", "401", "ginc", "402", "gsin",
    "8003", "grai", "8004", "giai",
];

/// Key AIs a path on `id.gs1.org` may start with without being rewritten.
const CANONICAL_KEYS: [&str; 14] = [
    "01", "8006", "8010", "414", "417", "8017", "8018", "255", "00", "253", "401", "402", "8003",
    "8004",
];

/// Whether `s` starts with 4 ASCII digits and one more character that is not `/`.
fn four_digits_and_more(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 5 && b[..4].iter().all(u8::is_ascii_digit) && b[4] != b'/'
}

/// Whether `s` is `/` and exactly ten of `A-Za-z_-` (the reference's compressed-link shape).
fn compressed_path(s: &str) -> bool {
    s.strip_prefix('/').is_some_and(|rest| {
        rest.len() == 10
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphabetic() || b == b'_' || b == b'-')
    })
}

/// The reference's first Digital Link pattern: `http(s):`, and before any `?` or `#` a path
/// segment naming a key AI followed by a value starting with four digits.
fn looks_like_digital_link(uri: &str) -> bool {
    let Some(rest) = uri
        .strip_prefix("https:")
        .or_else(|| uri.strip_prefix("http:"))
    else {
        return false;
    };
    let end = rest.find(['?', '#']).unwrap_or(rest.len());
    let keyed_segment = rest[..end].match_indices('/').any(|(i, _)| {
        let tail = &rest[i + 1..];
        PATH_KEYS.iter().any(|key| {
            tail.strip_prefix(key)
                .and_then(|t| t.strip_prefix('/'))
                .is_some_and(four_digits_and_more)
        })
    });
    if keyed_segment || compressed_path(rest) {
        return true;
    }
    // The same compressed shape after an authority.
    rest.strip_prefix("//").is_some_and(|authority| {
        let cut = authority.find(['/', '?', '#']).unwrap_or(authority.len());
        compressed_path(&authority[cut..])
    })
}

/// What follows `https://id.gs1.org` when `uri` starts with it, each `.` matching any character
/// but a newline (the reference's patterns leave the dots unescaped).
fn after_id_gs1(uri: &str) -> Option<&str> {
    fn skip_any(s: &str) -> Option<&str> {
        let mut chars = s.chars();
        match chars.next() {
            Some(c) if c != '\n' => Some(chars.as_str()),
            _ => None,
        }
    }
    let rest = uri.strip_prefix("https://id")?;
    let rest = skip_any(rest)?.strip_prefix("gs1")?;
    skip_any(rest)?.strip_prefix("org")
}

/// Digital Link value characters of the reference's final check: `" ' - . 0-9 ; < = > ? A-Z _
/// a-z` (no `%`, so percent-encoded values fail).
fn dl_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "\"'-.;<=>?_".contains(c)
}

/// One element of a reference pattern anchored at both ends.
#[derive(Clone, Copy)]
enum P {
    /// This exact text.
    Lit(&'static str),
    /// Exactly this many ASCII digits.
    Digits(usize),
    /// Up to this many ASCII digits.
    UpToDigits(usize),
    /// Up to this many [`dl_char`]s.
    Chars(usize),
    /// Up to this many [`dl_char`]s or `/`.
    CharsOrSlash(usize),
}

/// Whether all of `s` matches `pattern`, elements taken greedily (no pattern here needs
/// backtracking).
fn full_match(s: &str, pattern: &[P]) -> bool {
    let mut rest = s;
    for element in pattern {
        match *element {
            P::Lit(text) => match rest.strip_prefix(text) {
                Some(r) => rest = r,
                None => return false,
            },
            P::Digits(n) => {
                if rest.len() < n || !rest.as_bytes()[..n].iter().all(u8::is_ascii_digit) {
                    return false;
                }
                rest = &rest[n..];
            }
            P::UpToDigits(max) | P::Chars(max) | P::CharsOrSlash(max) => {
                let accept = |c: char| match element {
                    P::UpToDigits(_) => c.is_ascii_digit(),
                    P::Chars(_) => dl_char(c),
                    _ => dl_char(c) || c == '/',
                };
                let taken: usize = rest
                    .chars()
                    .take(max)
                    .take_while(|c| accept(*c))
                    .map(char::len_utf8)
                    .sum();
                rest = &rest[taken..];
            }
        }
    }
    rest.is_empty()
}

/// Whether `uri` is on `id.gs1.org` and the rest matches `pattern`.
fn on_id_gs1(uri: &str, pattern: &[P]) -> bool {
    after_id_gs1(uri).is_some_and(|rest| full_match(rest, pattern))
}

/// The reference's final syntax check of a normalised Digital Link.
fn valid_canonical(uri: &str) -> bool {
    use P::*;
    let patterns: [&[P]; 19] = [
        &[Lit("/00/"), Digits(18)],
        &[Lit("/01/"), Digits(14), Lit("/21/"), Chars(20)],
        &[Lit("/01/"), Digits(14), Lit("/10/"), Chars(20)],
        &[Lit("/01/"), Digits(14)],
        &[Lit("/01/"), Digits(14), Lit("/235/"), Chars(28)],
        &[Lit("/253/"), Digits(13), Chars(17)],
        &[Lit("/255/"), Digits(13), UpToDigits(12)],
        &[Lit("/401/"), Chars(30)],
        &[Lit("/402/"), Digits(17)],
        &[Lit("/414/"), Digits(13)],
        &[Lit("/414/"), Digits(13), Lit("/254/"), Chars(20)],
        &[Lit("/417/"), Digits(13)],
        &[Lit("/8003/"), Digits(14), Chars(16)],
        &[Lit("/8004/"), Chars(30)],
        &[Lit("/8006/"), Digits(18), Lit("/21/"), Chars(20)],
        &[Lit("/8006/"), Digits(18), Lit("/10/"), Chars(20)],
        &[Lit("/8006/"), Digits(18)],
        &[Lit("/8017/"), Digits(18)],
        &[Lit("/8018/"), Digits(18)],
    ];
    if patterns.iter().any(|p| on_id_gs1(uri, p)) {
        return true;
    }
    // `/8010/([#\-/0-9A-Z]{0,30})(/8011/(\d{0,12}))?$`: the CPI may hold `/`, so the split before
    // `/8011/` is searched.
    let cpi_char =
        |c: char| c == '#' || c == '-' || c == '/' || c.is_ascii_digit() || c.is_ascii_uppercase();
    after_id_gs1(uri)
        .and_then(|rest| rest.strip_prefix("/8010/"))
        .is_some_and(|rest| {
            let plain = rest.chars().count() <= 30 && rest.chars().all(cpi_char);
            plain
                || rest.match_indices("/8011/").any(|(i, _)| {
                    let (cpi, serial) = (&rest[..i], &rest[i + 6..]);
                    cpi.chars().count() <= 30
                        && cpi.chars().all(cpi_char)
                        && serial.len() <= 12
                        && all_digits(serial)
                })
        })
}

/// The reference's handling of Digital Link URIs, or `None` where it gives up.
fn digital_link(uri: &str) -> Option<String> {
    use P::*;
    if !looks_like_digital_link(uri) {
        return None;
    }
    let mut uri = match uri.find('?') {
        Some(q) => uri[..q].to_owned(),
        None => uri.to_owned(),
    };
    for (short, ai) in [
        ("/gtin/", "/01/"),
        ("/itip/", "/8006/"),
        ("/cpid/", "/8010/"),
        ("/gln/", "/414/"),
        ("/party/", "/417/"),
        ("/gsrnp/", "/8017/"),
        ("/gsrn/", "/8018/"),
        ("/gcn/", "/255/"),
        ("/sscc/", "/00/"),
        ("/gdti/", "/253/"),
        ("/ginc/", "/401/"),
        ("/gsin/", "/402/"),
        ("/grai/", "/8003/"),
        ("/giai/", "/8004/"),
        ("/cpv/", "/22/"),
        ("/lot/", "/10/"),
        ("/ser/", "/21/"),
    ] {
        uri = uri.replace(short, ai);
    }

    let canonical_start = after_id_gs1(&uri).is_some_and(|rest| {
        CANONICAL_KEYS.iter().any(|key| {
            rest.strip_prefix('/')
                .and_then(|r| r.strip_prefix(key))
                .and_then(|r| r.strip_prefix('/'))
                .is_some_and(four_digits_and_more)
        })
    });
    if !canonical_start {
        // The first key found in this order of keys (not of position) starts the new path.
        let keys = [
            "/00/", "/01/", "/253/", "/255/", "/401/", "/402/", "/414/", "/417/", "/8003/",
            "/8004/", "/8006/", "/8010/", "/8017/", "/8018/",
        ];
        if let Some(pos) = keys.iter().find_map(|key| uri.find(key)) {
            uri = format!("https://id.gs1.org{}", &uri[pos..]);
        }
    }

    // GTIN-8, -12 and -13 are padded to 14 digits (every `/01/` in the string is rewritten).
    let gtin_digits = |uri: &str| {
        after_id_gs1(uri)
            .and_then(|rest| rest.strip_prefix("/01/"))
            .map_or(0, |rest| {
                rest.bytes().take_while(u8::is_ascii_digit).count()
            })
    };
    match gtin_digits(&uri) {
        n if n >= 14 => {}
        13 => uri = uri.replace("/01/", "/01/0"),
        12 => uri = uri.replace("/01/", "/01/00"),
        8..=11 => uri = uri.replace("/01/", "/01/000000"),
        _ => {}
    }

    // The consumer product variant (AI 22) is dropped.
    let x = py_slice(&uri, py_find(&uri, "/22/") + 4, None);
    let cpv_only = |uri: &str| {
        on_id_gs1(uri, &[Lit("/8006/"), Digits(18), Lit("/22/"), Chars(20)])
            || on_id_gs1(uri, &[Lit("/01/"), Digits(14), Lit("/22/"), Chars(20)])
    };
    if cpv_only(&uri) {
        let kept = py_slice(&uri, 0, Some(py_find(&uri, "/22/")));
        uri = kept + &py_slice(&x, py_find(&x, "/"), Some(-1));
    }
    let cpv_then_more = |uri: &str| {
        on_id_gs1(
            uri,
            &[Lit("/8006/"), Digits(18), Lit("/22/"), CharsOrSlash(20)],
        ) || on_id_gs1(
            uri,
            &[Lit("/01/"), Digits(14), Lit("/22/"), CharsOrSlash(20)],
        )
    };
    if cpv_then_more(&uri) {
        let kept = py_slice(&uri, 0, Some(py_find(&uri, "/22/")));
        uri = kept + &py_slice(&x, py_find(&x, "/"), None);
    }

    // Beside a serial, the lot is dropped.
    let lot_and_serial = on_id_gs1(
        &uri,
        &[
            Lit("/8006/"),
            Digits(18),
            Lit("/10/"),
            Chars(20),
            Lit("/21/"),
            Chars(20),
        ],
    ) || on_id_gs1(
        &uri,
        &[
            Lit("/01/"),
            Digits(14),
            Lit("/10/"),
            Chars(20),
            Lit("/21/"),
            Chars(20),
        ],
    );
    if lot_and_serial {
        let y = py_slice(&uri, py_find(&uri, "/10/") + 4, None);
        let kept = py_slice(&uri, 0, Some(py_find(&uri, "/10/")));
        uri = kept + &py_slice(&y, py_find(&y, "/"), None);
    }

    valid_canonical(&uri).then_some(uri)
}

/// The reference's `normaliser`: the constrained canonical Digital Link of an EPC URN or GS1
/// Digital Link, or `None` when the reference leaves the value as it is.
pub(crate) fn normalise_identifier(uri: &str) -> Option<String> {
    let partition = uri.find('.')?;
    remembered(&NORMALISED, uri, |uri| {
        epc_urn(uri, partition).or_else(|| digital_link(uri))
    })
}

thread_local! {
    /// Values → their normal identifier, or `None` for a value that is not one.
    static NORMALISED: Memo<Option<String>> = crate::memo::empty();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Option<String> {
        normalise_identifier(s)
    }

    #[test]
    fn epc_urns_as_the_reference_converts_them() {
        let cases = [
            (
                "urn:epc:id:sgtin:0614141.107346.2017",
                "https://id.gs1.org/01/10614141073464/21/2017",
            ),
            (
                "urn:epc:id:sgtin:0614141.107346.A(1)+",
                "https://id.gs1.org/01/10614141073464/21/A%281%29%2B",
            ),
            (
                "urn:epc:id:sgtin:0614141.107346.a%2fb'c",
                "https://id.gs1.org/01/10614141073464/21/a%2fb'c",
            ),
            (
                "urn:epc:class:lgtin:4012345.012345.998877",
                "https://id.gs1.org/01/04012345123456/10/998877",
            ),
            (
                "urn:epc:idpat:sgtin:4012345.012345.*",
                "https://id.gs1.org/01/04012345123456",
            ),
            (
                "urn:epc:id:sscc:0614141.1234567890",
                "https://id.gs1.org/00/106141412345678908",
            ),
            (
                "urn:epc:id:sgln:0614141.12345.400",
                "https://id.gs1.org/414/0614141123452/254/400",
            ),
            (
                "urn:epc:id:sgln:0614141.12345.0",
                "https://id.gs1.org/414/0614141123452",
            ),
            (
                "urn:epc:id:sgln:061414112345..x",
                "https://id.gs1.org/414/0614141123452/254/x",
            ),
            (
                "urn:epc:id:pgln:0614141.12345",
                "https://id.gs1.org/417/0614141123452",
            ),
            (
                "urn:epc:id:grai:0614141.12345.400",
                "https://id.gs1.org/8003/00614141123452400",
            ),
            (
                "urn:epc:id:giai:0614141.12345400",
                "https://id.gs1.org/8004/061414112345400",
            ),
            (
                "urn:epc:id:gsrn:0614141.1234567890",
                "https://id.gs1.org/8018/061414112345678902",
            ),
            (
                "urn:epc:id:gsrnp:0614141.1234567890",
                "https://id.gs1.org/8017/061414112345678902",
            ),
            (
                "urn:epc:id:gdti:0614141.12345.400",
                "https://id.gs1.org/253/0614141123452400",
            ),
            (
                "urn:epc:id:cpi:0614141.123ABC.123456789",
                "https://id.gs1.org/8010/0614141123ABC/8011/123456789",
            ),
            (
                "urn:epc:id:sgcn:4012345.67890.04711",
                "https://id.gs1.org/255/401234567890104711",
            ),
            (
                "urn:epc:id:ginc:0614141.xyz3311cba",
                "https://id.gs1.org/401/0614141xyz3311cba",
            ),
            (
                "urn:epc:id:gsin:0614141.123456789",
                "https://id.gs1.org/402/06141411234567890",
            ),
            (
                "urn:epc:id:itip:4012345.012345.01.02.987",
                "https://id.gs1.org/8006/040123451234560102/21/987",
            ),
            (
                "urn:epc:id:upui:1234567.089456.51qIgY)%3C%26Jp3*j7'SDB",
                "https://id.gs1.org/01/01234567894560/235/51qIgY%29%3C%26Jp3%2Aj7'SDB",
            ),
            (
                "urn:epc:idpat:itip:4012345.012345.01.02.*",
                "https://id.gs1.org/8006/040123451234560102",
            ),
        ];
        for (urn, want) in cases {
            assert_eq!(n(urn).as_deref(), Some(want), "{urn}");
        }
        // Serials longer than 20 characters, unknown schemes and bad escapes stay as they are.
        for urn in [
            "urn:epc:id:sgtin:0614141.107346.123456789012345678901",
            "urn:epc:id:sgtin:0614141.107346.a%20b",
            "urn:epc:id:sgtin:0614141.10734.1",
            "urn:epc:id:foo:0614141.107346.1",
            "urn:epc:idpat:sgtin:0614141.*.*",
        ] {
            assert_eq!(n(urn), None, "{urn}");
        }
    }

    #[test]
    fn digital_links_as_the_reference_normalises_them() {
        let cases = [
            (
                "https://id.gs1.org/01/09506000134352/10/ABC",
                "https://id.gs1.org/01/09506000134352/10/ABC",
            ),
            (
                "https://brand.example/some/path/01/09506000134352/10/ABC?17=270101",
                "https://id.gs1.org/01/09506000134352/10/ABC",
            ),
            (
                "https://example.com/gtin/9506000134352/lot/ABC",
                "https://id.gs1.org/01/09506000134352/10/ABC",
            ),
            (
                "https://example.com/01/09506000134352/22/V1/10/L1/21/S1",
                "https://id.gs1.org/01/09506000134352/21/S1",
            ),
            (
                "https://example.com/01/09506000134352/22/V1",
                "https://id.gs1.org/01/09506000134352",
            ),
            (
                "https://example.com/01/95060001/21/S",
                "https://id.gs1.org/01/00000095060001/21/S",
            ),
            (
                "http://id.gs1.org/414/9506000134352/254/7",
                "https://id.gs1.org/414/9506000134352/254/7",
            ),
            (
                "https://example.com/8010/0614141123ABC/8011/1",
                "https://id.gs1.org/8010/0614141123ABC/8011/1",
            ),
            // No check digit verification.
            (
                "https://id.gs1.org/01/09506000134353",
                "https://id.gs1.org/01/09506000134353",
            ),
        ];
        for (uri, want) in cases {
            assert_eq!(n(uri).as_deref(), Some(want), "{uri}");
        }
        for uri in [
            "https://brand.example/01/09506000134352/10/ABC%2F1?17=270101",
            "https://localhost/01/09506000134352/10/ABC",
            "https://id.gs1.org/01/09506000134352/10/123456789012345678901",
            "https://example.org/certificates/7",
            "1.5",
            "ftp://x.example/01/09506000134352",
        ] {
            assert_eq!(n(uri), None, "{uri}");
        }
    }

    #[test]
    fn agrees_with_the_strict_canonical_form_on_ordinary_identifiers() {
        for id in [
            "urn:epc:class:lgtin:9520123.012345.CI-2024-0917",
            "urn:epc:class:lgtin:9520123.012345.Lot_7.b",
            "urn:epc:id:sgtin:9520123.012345.BAG0001",
            "urn:epc:id:sgln:9520123.00011.0",
            "urn:epc:id:sgln:9520123.00020.DRY-2",
            "urn:epc:id:sscc:9520123.1000000017",
            "urn:epc:id:pgln:9520123.00001",
            "urn:epc:idpat:sgtin:9520123.012345.*",
            "urn:epc:id:upui:9520123.012345.TPX-1",
            "urn:epc:class:lgtin:9520123.012345.A%2FB",
            "https://brand.example/x/01/09520123123451/10/CI_7.a?x=1",
            "https://id.gs1.org/01/9520123123451/21/S-1",
            "https://x.example/414/9520123000110/254/DRY-2",
            "https://x.example/414/9520123000110",
            "https://x.example/00/195201230000000179",
            "https://x.example/417/9520123000011",
            "https://x.example/01/09520123123451/22/V/10/L/21/S",
            "https://x.example/01/96385074/21/S",
        ] {
            let strict = crate::gs1::canonical_lot_id(id).unwrap();
            assert_eq!(n(id), Some(strict), "{id}");
        }
    }

    #[test]
    fn arbitrary_strings_never_panic() {
        for s in
            lotline_domain::gs1::samples::stitched(50_000, lotline_domain::gs1::samples::PIECES)
        {
            let _ = n(&s);
        }
    }

    #[test]
    fn python_slicing_helpers() {
        assert_eq!(py_slice("abc", -1, Some(-1)), "");
        assert_eq!(py_slice("abc", -1, None), "c");
        assert_eq!(py_slice("abc", 1, Some(-1)), "b");
        assert_eq!(py_slice("abc", 5, None), "");
        assert_eq!(py_find("abc", "x"), -1);
        assert_eq!(py_find("äbc", "c"), 2);
    }
}
