//! GS1 identification keys as supply chains write them, and their one canonical form.
//!
//! The keys: GTIN (8, 12, 13 or 14 digits, normalised to 14), GLN (13) and SSCC (18), each ending
//! in the mod-10 check digit of the GS1 General Specifications §7.9.1. They reach lotline in two
//! spellings:
//!
//! - EPC URNs (EPC Tag Data Standard): `urn:epc:id:sgtin:CompanyPrefix.IndicatorItemRef.Serial`,
//!   `urn:epc:class:lgtin:CompanyPrefix.IndicatorItemRef.Lot`, `urn:epc:idpat:sgtin:….*`,
//!   `urn:epc:id:sgln:CompanyPrefix.LocationRef.Extension`, `urn:epc:id:sscc:CompanyPrefix.SerialRef`,
//!   `urn:epc:id:pgln:…` and `urn:epc:id:upui:…`. The check digit is not written; it is computed.
//!   Reserved characters in a lot or serial are percent-escaped (`%2F` for `/`).
//! - GS1 Digital Link URIs on any domain and path prefix:
//!   `https://brand.example/some/path/01/09506000134352/10/ABC%2F1?17=270101`. The check digit is
//!   written and verified.
//!
//! [`Gs1Id`] is one parsed identifier; its canonical form is the constrained canonical Digital
//! Link of CBV 2.0: `https://id.gs1.org`, the primary key and only the finest qualifier (a serial
//! wins over a lot; the consumer product variant, AI 22, and the query string are dropped), values
//! percent-encoded as the GS1 Digital Link URI syntax requires. [`canonical_lot_id`] applies this to
//! any string and passes anything that is not a GS1 identifier through unchanged.
//!
//! The event hash (`lotline_epcis::hash`) does not use this canonical form directly: GS1's reference
//! implementation normalises identifiers with its own, looser rules (see `hash::normalise`). The
//! two agree on ordinary identifiers (lots and serials of letters, digits, `-`, `.` and `_`).

use std::fmt;

/// The scheme and host of every canonical Digital Link.
pub const DIGITAL_LINK_ROOT: &str = "https://id.gs1.org";

/// Which GS1 key a check-digit or syntax error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// Global Trade Item Number (AI 01).
    Gtin,
    /// Global Location Number (AI 414 for a physical location, AI 417 for a party).
    Gln,
    /// Serial Shipping Container Code (AI 00).
    Sscc,
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyKind::Gtin => "GTIN",
            KeyKind::Gln => "GLN",
            KeyKind::Sscc => "SSCC",
        })
    }
}

/// Why a string that claims to be a GS1 identifier is not a valid one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Gs1Error {
    /// The key's last digit is not its mod-10 check digit.
    #[error("{kind} {value} has a wrong check digit: expected {expected}, given {given}")]
    WrongCheckDigit {
        /// Which key.
        kind: KeyKind,
        /// The key as written.
        value: String,
        /// The check digit computed from the other digits.
        expected: u8,
        /// The check digit written.
        given: u8,
    },
    /// The key has the wrong length or a character that is not a digit.
    #[error("{kind} {value:?} is malformed: {reason}")]
    MalformedKey {
        /// Which key.
        kind: KeyKind,
        /// The key as written.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A string starting with `urn:epc:` that is not a well-formed EPC URN.
    #[error("EPC URN {urn:?} is malformed: {reason}")]
    MalformedUrn {
        /// The URN as written.
        urn: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A URI with a GS1 primary key in its path that is not a well-formed GS1 Digital Link.
    #[error("GS1 Digital Link {uri:?} is malformed: {reason}")]
    MalformedDigitalLink {
        /// The URI as written.
        uri: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A GS1 company prefix length outside 6..=12 digits.
    #[error("a GS1 company prefix has 6 to 12 digits, not {0}")]
    CompanyPrefixLength(usize),
}

/// Computes the GS1 mod-10 check digit (GS1 General Specifications §7.9.1) of a key's digits
/// without the check digit. `None` if `body` has a character that is not an ASCII digit.
pub fn check_digit(body: &str) -> Option<u8> {
    if !body.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(mod10(body.as_bytes()))
}

/// The check digit of ASCII digits: weights 3, 1, 3, … from the rightmost digit.
pub fn mod10(body: &[u8]) -> u8 {
    let sum: u32 = body
        .iter()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let digit = u32::from(b.wrapping_sub(b'0'));
            if i % 2 == 0 { digit * 3 } else { digit }
        })
        .sum();
    // The result is below 10, so the narrowing cannot lose anything.
    ((10 - sum % 10) % 10) as u8
}

/// Parses a key of one of `lengths` digits, verifies its check digit and left-pads it with zeros
/// to `width` digits.
fn parse_key(
    kind: KeyKind,
    value: &str,
    lengths: &[usize],
    width: usize,
) -> Result<String, Gs1Error> {
    let malformed = |reason: String| Gs1Error::MalformedKey {
        kind,
        value: value.to_owned(),
        reason,
    };
    if !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed("it must contain only digits".into()));
    }
    if !lengths.contains(&value.len()) {
        let allowed: Vec<String> = lengths.iter().map(ToString::to_string).collect();
        return Err(malformed(format!(
            "it must have {} digits, not {}",
            allowed.join(", "),
            value.len()
        )));
    }
    let (body, last) = value.split_at(value.len() - 1);
    let expected = mod10(body.as_bytes());
    let given = last.as_bytes()[0] - b'0';
    if expected != given {
        return Err(Gs1Error::WrongCheckDigit {
            kind,
            value: value.to_owned(),
            expected,
            given,
        });
    }
    Ok(format!("{value:0>width$}"))
}

/// Appends the check digit to a key body known to be ASCII digits.
fn with_check_digit(body: &str) -> String {
    format!("{body}{}", mod10(body.as_bytes()))
}

/// A Global Trade Item Number, normalised to 14 digits, check digit verified.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Gtin(String);

impl Gtin {
    /// Parses a GTIN-8, -12, -13 or -14 and normalises it to 14 digits.
    pub fn parse(value: &str) -> Result<Gtin, Gs1Error> {
        parse_key(KeyKind::Gtin, value, &[8, 12, 13, 14], 14).map(Gtin)
    }

    /// The 14 digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Gtin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A Global Location Number (13 digits), check digit verified.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Gln(String);

impl Gln {
    /// Parses a 13-digit GLN.
    pub fn parse(value: &str) -> Result<Gln, Gs1Error> {
        parse_key(KeyKind::Gln, value, &[13], 13).map(Gln)
    }

    /// The 13 digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Gln {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A Serial Shipping Container Code (18 digits), check digit verified.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sscc(String);

impl Sscc {
    /// Parses an 18-digit SSCC.
    pub fn parse(value: &str) -> Result<Sscc, Gs1Error> {
        parse_key(KeyKind::Sscc, value, &[18], 18).map(Sscc)
    }

    /// The 18 digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Sscc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One GS1 identifier at its finest level, in the form every spelling of it maps to.
///
/// Lots, serials and extensions hold decoded characters (no percent escapes); they are non-empty,
/// at most 20 characters (28 for a TPX) and drawn from the GS1 AI encodable character set 82.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Gs1Id {
    /// A trade item class: a GTIN alone (`/01/{gtin}`, or the pattern `urn:epc:idpat:sgtin:….*`).
    Gtin(Gtin),
    /// A lot of a trade item: GTIN + batch/lot (AI 10; `urn:epc:class:lgtin`).
    Lgtin {
        /// The trade item.
        gtin: Gtin,
        /// The lot, decoded.
        lot: String,
    },
    /// One serialised trade item: GTIN + serial (AI 21; `urn:epc:id:sgtin`).
    Sgtin {
        /// The trade item.
        gtin: Gtin,
        /// The serial, decoded.
        serial: String,
    },
    /// One trade item with a third-party controlled serial: GTIN + TPX (AI 235; `urn:epc:id:upui`).
    Upui {
        /// The trade item.
        gtin: Gtin,
        /// The third-party controlled, serialised extension, decoded.
        tpx: String,
    },
    /// A physical location: GLN (AI 414) with an optional extension (AI 254; `urn:epc:id:sgln`).
    Sgln {
        /// The location's GLN.
        gln: Gln,
        /// The GLN extension, decoded; `None` for the location itself (SGLN extension `0`).
        extension: Option<String>,
    },
    /// A party: GLN (AI 417; `urn:epc:id:pgln`).
    Pgln(Gln),
    /// A logistic unit: SSCC (AI 00; `urn:epc:id:sscc`).
    Sscc(Sscc),
}

/// The GS1 AI encodable character set 82 (GS1 General Specifications, figure 7.11-1).
fn is_cset82(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            '!' | '"'
                | '%'
                | '&'
                | '\''
                | '('
                | ')'
                | '*'
                | '+'
                | ','
                | '-'
                | '.'
                | '/'
                | ':'
                | ';'
                | '<'
                | '='
                | '>'
                | '?'
                | '_'
        )
}

/// Checks a decoded lot, serial, extension or TPX: non-empty, at most `max` characters, set 82.
fn check_component(what: &str, value: &str, max: usize) -> Result<(), String> {
    if value.is_empty() {
        return Err(format!("the {what} is empty"));
    }
    if let Some(c) = value.chars().find(|c| !is_cset82(*c)) {
        return Err(format!(
            "the {what} {value:?} has {c:?}, which is outside the GS1 character set 82"
        ));
    }
    let len = value.chars().count();
    if len > max {
        return Err(format!(
            "the {what} {value:?} has {len} characters; at most {max} are allowed"
        ));
    }
    Ok(())
}

/// Decodes `%XX` escapes. `None` for a `%` not followed by two hex digits or for bytes that are
/// not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let text = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(text, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Percent-encodes every byte outside `keep` as `%XX` with upper-case hex digits.
fn percent_encode(s: &str, keep: impl Fn(u8) -> bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if keep(b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Percent-encodes a value for a GS1 Digital Link path segment: everything but letters, digits,
/// `-`, `.` and `_` (the RFC 3986 unreserved characters of set 82) is escaped, which covers every
/// character the GS1 Digital Link URI syntax requires to be escaped (`! " # % & ' ( ) * + , / : ;
/// < = > ?`).
pub fn encode_digital_link_value(value: &str) -> String {
    percent_encode(value, |b| {
        b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_')
    })
}

/// Escapes a value for an EPC URN component (EPC Tag Data Standard): letters, digits and
/// `- _ . ! ' ( ) * + , : ; =` stay, everything else (`" % & / < > ?` in set 82) is `%XX`.
pub fn encode_urn_component(value: &str) -> String {
    percent_encode(value, |b| {
        b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'_'
                    | b'.'
                    | b'!'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b':'
                    | b';'
                    | b'='
            )
    })
}

/// Whether a string claims to be an EPC URN.
fn is_epc_urn(s: &str) -> bool {
    s.get(..8)
        .is_some_and(|p| p.eq_ignore_ascii_case("urn:epc:"))
}

/// Primary-key AIs this module understands in a Digital Link path (numeric or legacy short name).
fn primary_ai(segment: &str) -> Option<&'static str> {
    match segment {
        "01" | "gtin" => Some("01"),
        "414" | "gln" => Some("414"),
        "417" | "party" => Some("417"),
        "00" | "sscc" => Some("00"),
        _ => None,
    }
}

/// Qualifier AIs (numeric or legacy short name).
fn qualifier_ai(segment: &str) -> Option<&'static str> {
    match segment {
        "22" | "cpv" => Some("22"),
        "10" | "lot" => Some("10"),
        "21" | "ser" => Some("21"),
        "235" => Some("235"),
        "254" | "glnx" => Some("254"),
        _ => None,
    }
}

/// The parts of an `http(s)` URI this module looks at: the host and the path segments (query and
/// fragment dropped). `None` if the string is not an `http` or `https` URI.
fn uri_parts(uri: &str) -> Option<(&str, Vec<&str>)> {
    let scheme_end = uri.find("://")?;
    let scheme = &uri[..scheme_end];
    if !scheme.eq_ignore_ascii_case("https") && !scheme.eq_ignore_ascii_case("http") {
        return None;
    }
    let after_scheme = &uri[scheme_end + 3..];
    let end = after_scheme.find(['?', '#']).unwrap_or(after_scheme.len());
    let before_query = &after_scheme[..end];
    let (host, path) = match before_query.find('/') {
        Some(slash) => (&before_query[..slash], &before_query[slash + 1..]),
        None => (before_query, ""),
    };
    let mut segments: Vec<&str> = path.split('/').collect();
    // One trailing slash is tolerated.
    if segments.len() > 1 && segments.last() == Some(&"") {
        segments.pop();
    }
    Some((host, segments))
}

/// Whether a string claims to be a GS1 Digital Link: an `http(s)` URI with a path segment naming a
/// primary key this module knows, followed by a segment of as many digits as that key has (any
/// number of digits on `id.gs1.org`). A blog address like `https://example.org/2024/01/15/post`
/// makes no such claim.
fn claims_digital_link(s: &str) -> bool {
    let Some((host, segments)) = uri_parts(s) else {
        return false;
    };
    let resolver = host.eq_ignore_ascii_case("id.gs1.org");
    segments.windows(2).any(|pair| {
        let lengths: &[usize] = match primary_ai(pair[0]) {
            Some("01") => &[8, 12, 13, 14],
            Some("414" | "417") => &[13],
            Some(_) => &[18],
            None => return false,
        };
        !pair[1].is_empty()
            && pair[1].bytes().all(|b| b.is_ascii_digit())
            && (resolver || lengths.contains(&pair[1].len()))
    })
}

impl Gs1Id {
    /// Parses any GS1 spelling this module knows: an EPC URN or a GS1 Digital Link.
    ///
    /// `Ok(None)` for strings that are not GS1 identifiers, and for well-formed EPC URNs of schemes
    /// without a form here (GRAI, GIAI, GDTI, tag URNs, …). `Err` for strings that claim to be GS1
    /// and are malformed or carry a wrong check digit: those starting with `urn:epc:`, and `http(s)`
    /// URIs with a path segment `01`, `414`, `417` or `00` (or a legacy short name such as `gtin`)
    /// followed by a key's number of digits (any number on `id.gs1.org`).
    pub fn parse(s: &str) -> Result<Option<Gs1Id>, Gs1Error> {
        if is_epc_urn(s) {
            Gs1Id::parse_epc_urn(s)
        } else if claims_digital_link(s) {
            Gs1Id::parse_digital_link(s).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Parses an EPC URN. `Ok(None)` for a well-formed EPC URN of a scheme without a form here.
    pub fn parse_epc_urn(urn: &str) -> Result<Option<Gs1Id>, Gs1Error> {
        let malformed = |reason: &str| Gs1Error::MalformedUrn {
            urn: urn.to_owned(),
            reason: reason.to_owned(),
        };
        if !is_epc_urn(urn) {
            return Err(malformed("it does not start with urn:epc:"));
        }
        let rest = &urn[8..];
        let (category, rest) = rest
            .split_once(':')
            .ok_or_else(|| malformed("it has no scheme after the category"))?;
        let (scheme, body) = rest
            .split_once(':')
            .ok_or_else(|| malformed("it has no body after the scheme"))?;
        match (category, scheme) {
            ("id", "sgtin") => {
                let (gtin, serial) = urn_gtin_and_component(urn, body, "serial", 20)?;
                Ok(Some(Gs1Id::Sgtin { gtin, serial }))
            }
            ("class", "lgtin") => {
                let (gtin, lot) = urn_gtin_and_component(urn, body, "lot", 20)?;
                Ok(Some(Gs1Id::Lgtin { gtin, lot }))
            }
            ("id", "upui") => {
                let (gtin, tpx) = urn_gtin_and_component(urn, body, "TPX", 28)?;
                Ok(Some(Gs1Id::Upui { gtin, tpx }))
            }
            ("idpat", "sgtin") => {
                let parts: Vec<&str> = body.split('.').collect();
                match parts.as_slice() {
                    [_, "*", "*"] => Ok(None),
                    [company, item, "*"] => {
                        let (cp, item) = split_company_prefix(urn, company, item, 13, false)?;
                        Ok(Some(Gs1Id::Gtin(gtin_from_urn(cp, item))))
                    }
                    _ => Err(malformed(
                        "an SGTIN pattern is CompanyPrefix.IndicatorItemRef.* or CompanyPrefix.*.*",
                    )),
                }
            }
            ("id", "sgln") => {
                let mut parts = body.splitn(3, '.');
                let (Some(company), Some(location), Some(ext)) =
                    (parts.next(), parts.next(), parts.next())
                else {
                    return Err(malformed(
                        "an SGLN is CompanyPrefix.LocationReference.Extension",
                    ));
                };
                let (cp, location) = split_company_prefix(urn, company, location, 12, true)?;
                let gln = Gln(with_check_digit(&format!("{cp}{location}")));
                let ext = decode_urn_component(urn, ext, "extension", 20)?;
                let extension = (ext != "0").then_some(ext);
                Ok(Some(Gs1Id::Sgln { gln, extension }))
            }
            ("id", "pgln") => {
                let Some((company, party)) = body.split_once('.') else {
                    return Err(malformed("a PGLN is CompanyPrefix.PartyReference"));
                };
                let (cp, party) = split_company_prefix(urn, company, party, 12, true)?;
                Ok(Some(Gs1Id::Pgln(Gln(with_check_digit(&format!(
                    "{cp}{party}"
                ))))))
            }
            ("id", "sscc") => {
                let Some((company, serial_ref)) = body.split_once('.') else {
                    return Err(malformed("an SSCC is CompanyPrefix.SerialReference"));
                };
                let (cp, serial_ref) = split_company_prefix(urn, company, serial_ref, 17, false)?;
                let (extension_digit, rest) = serial_ref.split_at(1);
                Ok(Some(Gs1Id::Sscc(Sscc(with_check_digit(&format!(
                    "{extension_digit}{cp}{rest}"
                ))))))
            }
            ("id" | "class" | "idpat" | "tag" | "pat" | "raw", scheme) => {
                if scheme.is_empty() || body.is_empty() {
                    Err(malformed("the scheme or the body is empty"))
                } else {
                    Ok(None)
                }
            }
            _ => Err(malformed(
                "the category must be id, class, idpat, tag, pat or raw",
            )),
        }
    }

    /// Parses a GS1 Digital Link URI on any domain and path prefix. The query string and fragment
    /// are ignored; the primary key's check digit is verified.
    pub fn parse_digital_link(uri: &str) -> Result<Gs1Id, Gs1Error> {
        let malformed = |reason: String| Gs1Error::MalformedDigitalLink {
            uri: uri.to_owned(),
            reason,
        };
        let (_, segments) =
            uri_parts(uri).ok_or_else(|| malformed("it is not an http(s) URI".into()))?;
        let mut first_error = None;
        for start in 0..segments.len().saturating_sub(1) {
            let Some(ai) = primary_ai(segments[start]) else {
                continue;
            };
            let key = segments[start + 1];
            if key.is_empty() || !key.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            match key_path(ai, key, &segments[start + 2..]) {
                Ok(path) => return path.into_id(uri),
                Err(reason) => {
                    first_error.get_or_insert(reason);
                }
            }
        }
        Err(malformed(first_error.unwrap_or_else(|| {
            "its path has no GS1 primary key (01, 414, 417 or 00) followed by digits".into()
        })))
    }

    /// The canonical GS1 Digital Link URI on `https://id.gs1.org`.
    pub fn to_digital_link(&self) -> String {
        let enc = encode_digital_link_value;
        match self {
            Gs1Id::Gtin(gtin) => format!("{DIGITAL_LINK_ROOT}/01/{gtin}"),
            Gs1Id::Lgtin { gtin, lot } => format!("{DIGITAL_LINK_ROOT}/01/{gtin}/10/{}", enc(lot)),
            Gs1Id::Sgtin { gtin, serial } => {
                format!("{DIGITAL_LINK_ROOT}/01/{gtin}/21/{}", enc(serial))
            }
            Gs1Id::Upui { gtin, tpx } => format!("{DIGITAL_LINK_ROOT}/01/{gtin}/235/{}", enc(tpx)),
            Gs1Id::Sgln {
                gln,
                extension: None,
            } => format!("{DIGITAL_LINK_ROOT}/414/{gln}"),
            Gs1Id::Sgln {
                gln,
                extension: Some(ext),
            } => format!("{DIGITAL_LINK_ROOT}/414/{gln}/254/{}", enc(ext)),
            Gs1Id::Pgln(gln) => format!("{DIGITAL_LINK_ROOT}/417/{gln}"),
            Gs1Id::Sscc(sscc) => format!("{DIGITAL_LINK_ROOT}/00/{sscc}"),
        }
    }

    /// The EPC URN, given the length of the GS1 company prefix (6 to 12 digits), which a Digital
    /// Link does not carry. A location without extension gets the SGLN extension `0` (so an
    /// explicit extension `0`, `/254/0` in a Digital Link, reads back as none); a GTIN alone
    /// becomes the pattern `urn:epc:idpat:sgtin:….*`.
    pub fn to_epc_urn(&self, company_prefix_len: usize) -> Result<String, Gs1Error> {
        let n = company_prefix_len;
        if !(6..=12).contains(&n) {
            return Err(Gs1Error::CompanyPrefixLength(n));
        }
        let enc = encode_urn_component;
        // A GTIN-14 is indicator, company prefix, item reference, check digit.
        let gtin_parts = |gtin: &Gtin| {
            let g = gtin.as_str();
            (
                g[1..1 + n].to_owned(),
                format!("{}{}", &g[..1], &g[1 + n..13]),
            )
        };
        Ok(match self {
            Gs1Id::Gtin(gtin) => {
                let (cp, item) = gtin_parts(gtin);
                format!("urn:epc:idpat:sgtin:{cp}.{item}.*")
            }
            Gs1Id::Lgtin { gtin, lot } => {
                let (cp, item) = gtin_parts(gtin);
                format!("urn:epc:class:lgtin:{cp}.{item}.{}", enc(lot))
            }
            Gs1Id::Sgtin { gtin, serial } => {
                let (cp, item) = gtin_parts(gtin);
                format!("urn:epc:id:sgtin:{cp}.{item}.{}", enc(serial))
            }
            Gs1Id::Upui { gtin, tpx } => {
                let (cp, item) = gtin_parts(gtin);
                format!("urn:epc:id:upui:{cp}.{item}.{}", enc(tpx))
            }
            Gs1Id::Sgln { gln, extension } => {
                let g = gln.as_str();
                let ext = extension.as_deref().map_or_else(|| "0".to_owned(), enc);
                format!("urn:epc:id:sgln:{}.{}.{ext}", &g[..n], &g[n..12])
            }
            Gs1Id::Pgln(gln) => {
                let g = gln.as_str();
                format!("urn:epc:id:pgln:{}.{}", &g[..n], &g[n..12])
            }
            Gs1Id::Sscc(sscc) => {
                // An SSCC is extension digit, company prefix, serial reference, check digit.
                let s = sscc.as_str();
                format!(
                    "urn:epc:id:sscc:{}.{}{}",
                    &s[1..1 + n],
                    &s[..1],
                    &s[1 + n..17]
                )
            }
        })
    }
}

impl fmt::Display for Gs1Id {
    /// Writes the canonical Digital Link.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_digital_link())
    }
}

/// Canonicalises an identifier: a GS1 form (EPC URN or GS1 Digital Link) becomes its canonical
/// Digital Link on `https://id.gs1.org`; anything else (an opaque lotline lot id, or an EPC URN of
/// a scheme without a Digital Link form here) comes back unchanged, so callers can apply it to
/// every id.
///
/// Errors only for strings that claim to be GS1 and are malformed or carry a wrong check digit.
///
/// ```
/// use lotline_domain::gs1::canonical_lot_id;
///
/// let from_urn = canonical_lot_id("urn:epc:class:lgtin:9506000.013435.ABC%2F1")?;
/// let from_link =
///     canonical_lot_id("https://brand.example/some/path/01/09506000134352/10/ABC%2F1?17=270101")?;
/// assert_eq!(from_urn, "https://id.gs1.org/01/09506000134352/10/ABC%2F1");
/// assert_eq!(from_urn, from_link);
/// assert_eq!(canonical_lot_id("LOT-2024-0001")?, "LOT-2024-0001");
/// assert!(canonical_lot_id("https://id.gs1.org/01/09506000134353/10/ABC").is_err());
/// # Ok::<(), lotline_domain::gs1::Gs1Error>(())
/// ```
pub fn canonical_lot_id(s: &str) -> Result<String, Gs1Error> {
    Ok(match Gs1Id::parse(s)? {
        Some(id) => id.to_digital_link(),
        None => s.to_owned(),
    })
}

/// Splits the company prefix and reference of an EPC URN and checks their digits: the prefix has
/// 6 to 12 digits and both together have `total`. The reference may be empty only where
/// `empty_reference` allows it (a 12-digit prefix in a 12-digit SGLN or PGLN).
fn split_company_prefix<'a>(
    urn: &str,
    company: &'a str,
    reference: &'a str,
    total: usize,
    empty_reference: bool,
) -> Result<(&'a str, &'a str), Gs1Error> {
    let malformed = |reason: String| Gs1Error::MalformedUrn {
        urn: urn.to_owned(),
        reason,
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if !digits(company) || !(6..=12).contains(&company.len()) {
        return Err(malformed(format!(
            "the company prefix {company:?} must be 6 to 12 digits"
        )));
    }
    if !digits(reference) || company.len() + reference.len() != total {
        return Err(malformed(format!(
            "the company prefix and reference {company}.{reference} must have {total} digits together"
        )));
    }
    if reference.is_empty() && !empty_reference {
        return Err(malformed(
            "the reference after the company prefix is empty".into(),
        ));
    }
    Ok((company, reference))
}

/// The GTIN of an SGTIN-shaped URN: indicator digit, company prefix, item reference, check digit.
fn gtin_from_urn(company: &str, indicator_item: &str) -> Gtin {
    let (indicator, item) = indicator_item.split_at(1);
    Gtin(with_check_digit(&format!("{indicator}{company}{item}")))
}

/// Parses `CompanyPrefix.IndicatorItemRef.Component` (SGTIN, LGTIN, UPUI).
fn urn_gtin_and_component(
    urn: &str,
    body: &str,
    what: &str,
    max: usize,
) -> Result<(Gtin, String), Gs1Error> {
    let mut parts = body.splitn(3, '.');
    let (Some(company), Some(item), Some(component)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(Gs1Error::MalformedUrn {
            urn: urn.to_owned(),
            reason: format!("expected CompanyPrefix.IndicatorItemReference.{what}"),
        });
    };
    let (cp, item) = split_company_prefix(urn, company, item, 13, false)?;
    let component = decode_urn_component(urn, component, what, max)?;
    Ok((gtin_from_urn(cp, item), component))
}

/// Decodes an EPC URN component: characters outside letters, digits and `- _ . ! ' ( ) * + , : ;
/// =` must be percent-escaped; the decoded value is checked against set 82 and `max`.
fn decode_urn_component(urn: &str, raw: &str, what: &str, max: usize) -> Result<String, Gs1Error> {
    let malformed = |reason: String| Gs1Error::MalformedUrn {
        urn: urn.to_owned(),
        reason,
    };
    if let Some(c) = raw
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "-_.!'()*+,:;=%".contains(*c)))
    {
        return Err(malformed(format!(
            "{c:?} must be percent-escaped in the {what}"
        )));
    }
    let decoded = percent_decode(raw)
        .ok_or_else(|| malformed(format!("the {what} {raw:?} has a broken % escape")))?;
    check_component(what, &decoded, max).map_err(malformed)?;
    Ok(decoded)
}

/// A Digital Link key path, split but not yet checked.
struct KeyPath<'a> {
    ai: &'static str,
    key: &'a str,
    qualifiers: Vec<(&'static str, String)>,
}

/// Splits the segments after a primary key into qualifier pairs and checks their order and
/// values. `Err` carries the reason.
fn key_path<'a>(ai: &'static str, key: &'a str, rest: &[&str]) -> Result<KeyPath<'a>, String> {
    if !rest.len().is_multiple_of(2) {
        return Err(format!(
            "the path after /{ai}/{key} must be pairs of qualifier and value"
        ));
    }
    let allowed: &[&str] = match ai {
        "01" => &["22", "10", "21", "235"],
        "414" => &["254"],
        _ => &[],
    };
    let mut qualifiers: Vec<(&'static str, String)> = Vec::new();
    let mut last_position = None;
    for pair in rest.chunks(2) {
        let (name, raw) = (pair[0], pair[1]);
        let qualifier = qualifier_ai(name)
            .filter(|q| allowed.contains(q))
            .ok_or_else(|| format!("{name:?} is not a qualifier of the primary key {ai}"))?;
        let position = allowed.iter().position(|q| *q == qualifier);
        if position <= last_position {
            return Err(format!(
                "qualifier {qualifier} is repeated or out of order (the order is {})",
                allowed.join(", ")
            ));
        }
        last_position = position;
        let value = percent_decode(raw)
            .ok_or_else(|| format!("the value {raw:?} of {qualifier} has a broken % escape"))?;
        let (what, max) = match qualifier {
            "22" => ("consumer product variant", 20),
            "10" => ("lot", 20),
            "21" => ("serial", 20),
            "235" => ("TPX", 28),
            _ => ("GLN extension", 20),
        };
        check_component(what, &value, max)?;
        qualifiers.push((qualifier, value));
    }
    let has = |q: &str| qualifiers.iter().any(|(name, _)| *name == q);
    if has("21") && has("235") {
        return Err("a serial (21) and a TPX (235) cannot both qualify a GTIN".into());
    }
    Ok(KeyPath {
        ai,
        key,
        qualifiers,
    })
}

impl KeyPath<'_> {
    /// Verifies the key and keeps the finest qualifier.
    fn into_id(self, uri: &str) -> Result<Gs1Id, Gs1Error> {
        let take = |name: &str| {
            self.qualifiers
                .iter()
                .find(|(q, _)| *q == name)
                .map(|(_, v)| v.clone())
        };
        match self.ai {
            "01" => {
                let gtin = Gtin::parse(self.key)?;
                Ok(if let Some(serial) = take("21") {
                    Gs1Id::Sgtin { gtin, serial }
                } else if let Some(tpx) = take("235") {
                    Gs1Id::Upui { gtin, tpx }
                } else if let Some(lot) = take("10") {
                    Gs1Id::Lgtin { gtin, lot }
                } else {
                    Gs1Id::Gtin(gtin)
                })
            }
            "414" => Ok(Gs1Id::Sgln {
                gln: Gln::parse(self.key)?,
                extension: take("254"),
            }),
            "417" => Ok(Gs1Id::Pgln(Gln::parse(self.key)?)),
            "00" => Ok(Gs1Id::Sscc(Sscc::parse(self.key)?)),
            other => Err(Gs1Error::MalformedDigitalLink {
                uri: uri.to_owned(),
                reason: format!("primary key {other} is not supported"),
            }),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::samples::*;
    use super::*;

    const GTIN: &str = "09506000134352";

    fn wrong_digit(result: Result<impl fmt::Debug, Gs1Error>) -> (KeyKind, u8, u8) {
        match result {
            Err(Gs1Error::WrongCheckDigit {
                kind,
                expected,
                given,
                ..
            }) => (kind, expected, given),
            other => panic!("expected a wrong check digit, got {other:?}"),
        }
    }

    #[test]
    fn check_digits_of_all_gtin_lengths() {
        // GTIN-8, -12, -13 and -14 with correct check digits, normalised to 14 digits.
        assert_eq!(Gtin::parse("96385074").unwrap().as_str(), "00000096385074");
        assert_eq!(
            Gtin::parse("036000291452").unwrap().as_str(),
            "00036000291452"
        );
        assert_eq!(Gtin::parse("9506000134352").unwrap().as_str(), GTIN);
        assert_eq!(Gtin::parse(GTIN).unwrap().as_str(), GTIN);
        assert_eq!(
            Gtin::parse("10614141000415").unwrap().as_str(),
            "10614141000415"
        );

        assert_eq!(wrong_digit(Gtin::parse("96385075")), (KeyKind::Gtin, 4, 5));
        assert_eq!(
            wrong_digit(Gtin::parse("036000291453")),
            (KeyKind::Gtin, 2, 3)
        );
        assert_eq!(
            wrong_digit(Gtin::parse("9506000134351")),
            (KeyKind::Gtin, 2, 1)
        );
        assert_eq!(
            wrong_digit(Gtin::parse("10614141000410")),
            (KeyKind::Gtin, 5, 0)
        );
    }

    #[test]
    fn check_digits_of_gln_and_sscc() {
        assert_eq!(
            Gln::parse("9506000134352").unwrap().as_str(),
            "9506000134352"
        );
        assert_eq!(
            Gln::parse("0614141000012").unwrap().as_str(),
            "0614141000012"
        );
        assert_eq!(
            wrong_digit(Gln::parse("0614141000013")),
            (KeyKind::Gln, 2, 3)
        );

        assert_eq!(
            Sscc::parse("106141411234567897").unwrap().as_str(),
            "106141411234567897"
        );
        assert_eq!(
            wrong_digit(Sscc::parse("106141411234567890")),
            (KeyKind::Sscc, 7, 0)
        );
    }

    #[test]
    fn wrong_check_digit_message_names_key_expected_and_given() {
        let err = Gtin::parse("09506000134353").unwrap_err();
        assert_eq!(
            err.to_string(),
            "GTIN 09506000134353 has a wrong check digit: expected 2, given 3"
        );
        let err = canonical_lot_id("https://id.gs1.org/414/9506000134353").unwrap_err();
        assert_eq!(
            err.to_string(),
            "GLN 9506000134353 has a wrong check digit: expected 2, given 3"
        );
    }

    #[test]
    fn malformed_keys_are_errors() {
        for bad in [
            "",
            "1234567",
            "123456789012345",
            "95060001343a2",
            "９５０６０００１３４３５２",
        ] {
            assert!(
                matches!(Gtin::parse(bad), Err(Gs1Error::MalformedKey { .. })),
                "{bad:?}"
            );
        }
        assert!(matches!(
            Gln::parse("950600013435"),
            Err(Gs1Error::MalformedKey { .. })
        ));
        assert!(matches!(
            Sscc::parse("10614141123456789"),
            Err(Gs1Error::MalformedKey { .. })
        ));
        assert_eq!(check_digit("950600013435"), Some(2));
        assert_eq!(check_digit("95060001343x"), None);
    }

    #[test]
    fn lgtin_urn_and_digital_link_are_one_lot() {
        let from_urn = canonical_lot_id("urn:epc:class:lgtin:9506000.013435.LOT-7").unwrap();
        let from_dl = canonical_lot_id(
            "https://brand.example/some/path/01/09506000134352/10/LOT-7?17=270101",
        )
        .unwrap();
        assert_eq!(from_urn, "https://id.gs1.org/01/09506000134352/10/LOT-7");
        assert_eq!(from_urn, from_dl);
        // A GTIN-13 in the Digital Link is normalised to 14 digits.
        assert_eq!(
            canonical_lot_id("https://id.gs1.org/01/9506000134352/10/LOT-7").unwrap(),
            from_urn
        );
    }

    #[test]
    fn urn_and_digital_link_round_trips() {
        let cases = [
            (
                "urn:epc:class:lgtin:9506000.013435.ABC%2F1",
                "https://id.gs1.org/01/09506000134352/10/ABC%2F1",
                7,
            ),
            (
                "urn:epc:id:sgtin:0614141.107346.2017",
                "https://id.gs1.org/01/10614141073464/21/2017",
                7,
            ),
            (
                "urn:epc:id:sgln:9506000.13435.0",
                "https://id.gs1.org/414/9506000134352",
                7,
            ),
            (
                "urn:epc:id:sgln:0614141.12345.400",
                "https://id.gs1.org/414/0614141123452/254/400",
                7,
            ),
            (
                "urn:epc:id:sscc:0614141.1234567890",
                "https://id.gs1.org/00/106141412345678908",
                7,
            ),
            (
                "urn:epc:id:pgln:9506000.13435",
                "https://id.gs1.org/417/9506000134352",
                7,
            ),
            (
                "urn:epc:idpat:sgtin:9506000.013435.*",
                "https://id.gs1.org/01/09506000134352",
                7,
            ),
            (
                "urn:epc:id:sgln:950600013435..x",
                "https://id.gs1.org/414/9506000134352/254/x",
                12,
            ),
        ];
        for (urn, dl, prefix_len) in cases {
            let id = Gs1Id::parse(urn).unwrap().unwrap();
            assert_eq!(id.to_digital_link(), dl, "{urn}");
            let back = Gs1Id::parse_digital_link(dl).unwrap();
            assert_eq!(back, id, "{dl}");
            assert_eq!(back.to_epc_urn(prefix_len).unwrap(), urn, "{dl}");
        }
    }

    #[test]
    fn percent_encoding_round_trips() {
        // Every special character of set 82 in a lot survives URN -> Digital Link -> URN.
        let lot = "!\"%&'()*+,-./:;<=>?_";
        let id = Gs1Id::Lgtin {
            gtin: Gtin::parse(GTIN).unwrap(),
            lot: lot.into(),
        };
        let urn = id.to_epc_urn(7).unwrap();
        assert_eq!(
            urn,
            "urn:epc:class:lgtin:9506000.013435.!%22%25%26'()*+,-.%2F:;%3C=%3E%3F_"
        );
        let dl = id.to_digital_link();
        assert_eq!(
            dl,
            "https://id.gs1.org/01/09506000134352/10/%21%22%25%26%27%28%29%2A%2B%2C-.%2F%3A%3B%3C%3D%3E%3F_"
        );
        assert_eq!(Gs1Id::parse(&urn).unwrap(), Some(id.clone()));
        assert_eq!(Gs1Id::parse(&dl).unwrap(), Some(id.clone()));
        // Lower-case escapes and needlessly escaped letters decode to the same lot.
        assert_eq!(
            canonical_lot_id("https://id.gs1.org/01/09506000134352/10/ABC%2f%31").unwrap(),
            "https://id.gs1.org/01/09506000134352/10/ABC%2F1"
        );
    }

    #[test]
    fn digital_link_on_brand_domain_with_path_prefix_and_query() {
        let id = Gs1Id::parse(
            "https://brand.example/some/path/01/09506000134352/10/ABC%2F1?17=270101#frag",
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            id,
            Gs1Id::Lgtin {
                gtin: Gtin::parse(GTIN).unwrap(),
                lot: "ABC/1".into()
            }
        );
        assert_eq!(
            id.to_digital_link(),
            "https://id.gs1.org/01/09506000134352/10/ABC%2F1"
        );
        // A path prefix that itself contains a key-like pair is skipped.
        assert_eq!(
            canonical_lot_id("http://x.example/01/123/01/09506000134352/21/S1/").unwrap(),
            "https://id.gs1.org/01/09506000134352/21/S1"
        );
        // Legacy short names, the CPV and a lot beside a serial are reduced to the finest key.
        assert_eq!(
            canonical_lot_id("https://x.example/gtin/09506000134352/cpv/2A/lot/L1/ser/S1").unwrap(),
            "https://id.gs1.org/01/09506000134352/21/S1"
        );
        assert_eq!(
            canonical_lot_id("https://x.example/01/09506000134352/22/2A").unwrap(),
            "https://id.gs1.org/01/09506000134352"
        );
        assert_eq!(
            canonical_lot_id("https://x.example/00/106141412345678908?x=1").unwrap(),
            "https://id.gs1.org/00/106141412345678908"
        );
    }

    #[test]
    fn opaque_ids_pass_through() {
        for id in [
            "LOT-2024-0001",
            "",
            "urn:uuid:6f1b0b7e-3c3e-4a55-9f55-2f1b0b7e3c3e",
            "https://example.org/2024/01/report",
            "https://example.org/2024/01/15/my-post",
            "https://example.org/00/12",
            "https://example.org/01/notdigits/10/x",
            "urn:epc:id:grai:0614141.12345.400",
            "urn:epc:tag:sgtin-96:3.0614141.812345.6789",
            "urn:epc:idpat:sgtin:0614141.*.*",
        ] {
            assert_eq!(canonical_lot_id(id).unwrap(), id);
        }
    }

    #[test]
    fn malformed_gs1_strings_are_errors_not_panics() {
        let urns = [
            "urn:epc:",
            "urn:epc:id",
            "urn:epc:id:sgtin",
            "urn:epc:id:sgtin:",
            "urn:epc:id:sgtin:0614141.107346",
            "urn:epc:id:sgtin:0614141.107346.",
            "urn:epc:id:sgtin:061414.107346.1",
            "urn:epc:id:sgtin:06141411073460.1.1",
            "urn:epc:id:sgtin:0614141.1073x6.1",
            "urn:epc:id:sgtin:0614141.107346.a/b",
            "urn:epc:id:sgtin:0614141.107346.%2",
            "urn:epc:id:sgtin:0614141.107346.%zz",
            "urn:epc:id:sgtin:0614141.107346.%FF",
            "urn:epc:id:sgtin:0614141.107346.123456789012345678901",
            "urn:epc:class:lgtin:0614141.107346.é",
            "urn:epc:id:sgln:0614141.12345",
            "urn:epc:id:sgln:0614141.123456.0",
            "urn:epc:id:sscc:0614141.123456789",
            "urn:epc:id:sscc:0614141",
            "urn:epc:idpat:sgtin:0614141.107346.1",
            "urn:epc:foo:sgtin:0614141.107346.1",
            "urn:epc:id::x",
        ];
        for urn in urns {
            assert!(
                matches!(canonical_lot_id(urn), Err(Gs1Error::MalformedUrn { .. })),
                "{urn}: {:?}",
                canonical_lot_id(urn)
            );
        }
        let links = [
            "https://id.gs1.org/01/09506000134352/10",
            "https://id.gs1.org/01/09506000134352/10/",
            "https://id.gs1.org/01/09506000134352/99/x",
            "https://id.gs1.org/01/09506000134352/21/S/10/L",
            "https://id.gs1.org/01/09506000134352/10/L/10/L",
            "https://id.gs1.org/01/09506000134352/21/S/235/T",
            "https://id.gs1.org/01/09506000134352/10/%G1",
            "https://id.gs1.org/01/09506000134352/10/a%20b",
            "https://id.gs1.org/01/09506000134352/10/123456789012345678901",
            "https://id.gs1.org/01/123456789",
            "https://id.gs1.org/414/9506000134352/10/x",
            "https://id.gs1.org/00/1234",
        ];
        for link in links {
            assert!(
                matches!(
                    canonical_lot_id(link),
                    Err(Gs1Error::MalformedDigitalLink { .. } | Gs1Error::MalformedKey { .. })
                ),
                "{link}: {:?}",
                canonical_lot_id(link)
            );
        }
        assert!(matches!(
            canonical_lot_id("https://id.gs1.org/01/09506000134353/10/x"),
            Err(Gs1Error::WrongCheckDigit { .. })
        ));
        assert!(matches!(
            Gs1Id::Sscc(Sscc::parse("106141412345678908").unwrap()).to_epc_urn(13),
            Err(Gs1Error::CompanyPrefixLength(13))
        ));
    }

    #[test]
    fn arbitrary_strings_never_panic() {
        for s in stitched(50_000, PIECES) {
            let _ = canonical_lot_id(&s);
        }
    }

    #[test]
    fn random_identifiers_round_trip_through_both_spellings() {
        const SET82: &[u8] =
            b"!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz";
        fn digits(n: usize, next: &mut impl FnMut() -> u64) -> String {
            (0..n)
                .map(|_| char::from(b'0' + (next() % 10) as u8))
                .collect()
        }
        fn text(max: u64, next: &mut impl FnMut() -> u64) -> String {
            let len = next() % max + 1;
            (0..len)
                .map(|_| char::from(SET82[(next() % SET82.len() as u64) as usize]))
                .collect()
        }
        let mut next = sequence();
        for _ in 0..5_000 {
            let gtin = Gtin(with_check_digit(&digits(13, &mut next)));
            let gln = Gln(with_check_digit(&digits(12, &mut next)));
            let id = match next() % 7 {
                0 => Gs1Id::Gtin(gtin),
                1 => Gs1Id::Lgtin {
                    gtin,
                    lot: text(20, &mut next),
                },
                2 => Gs1Id::Sgtin {
                    gtin,
                    serial: text(20, &mut next),
                },
                3 => Gs1Id::Upui {
                    gtin,
                    tpx: text(28, &mut next),
                },
                4 => {
                    let extension = Some(text(20, &mut next)).filter(|e| e != "0");
                    Gs1Id::Sgln { gln, extension }
                }
                5 => Gs1Id::Pgln(gln),
                _ => Gs1Id::Sscc(Sscc(with_check_digit(&digits(17, &mut next)))),
            };
            let dl = id.to_digital_link();
            assert_eq!(Gs1Id::parse(&dl), Ok(Some(id.clone())), "{dl}");
            let brand = dl.replace(DIGITAL_LINK_ROOT, "https://brand.example/p") + "?q=1";
            assert_eq!(Gs1Id::parse(&brand), Ok(Some(id.clone())), "{brand}");
            for prefix_len in 6..=12 {
                let urn = id.to_epc_urn(prefix_len).unwrap();
                assert_eq!(Gs1Id::parse(&urn), Ok(Some(id.clone())), "{urn}");
            }
        }
    }
}

/// Strings for tests that must never panic on input: pieces of GS1 syntax stitched together
/// in a fixed pseudo-random order.
#[cfg(any(test, feature = "test-util"))]
pub mod samples {
    /// A fixed pseudo-random sequence (xorshift), so the tests are repeatable.
    pub fn sequence() -> impl FnMut() -> u64 {
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        }
    }

    /// Strings stitched from pieces of GS1 syntax.
    pub fn stitched(count: usize, pieces: &[&str]) -> Vec<String> {
        let mut next = sequence();
        (0..count)
            .map(|_| {
                let len = next() % 12 + 1;
                (0..len)
                    .map(|_| pieces[(next() % pieces.len() as u64) as usize])
                    .collect()
            })
            .collect()
    }

    pub const PIECES: &[&str] = &[
        "urn:epc:",
        "id:",
        "class:",
        "idpat:",
        "sgtin:",
        "lgtin:",
        "sgln:",
        "sscc:",
        "pgln:",
        "upui:",
        "grai:",
        "https://",
        "http://",
        "id.gs1.org",
        "brand.example",
        "/",
        "01/",
        "10/",
        "21/",
        "22/",
        "235/",
        "254/",
        "414/",
        "417/",
        "00/",
        "gtin/",
        "lot/",
        ".",
        "*",
        "%",
        "%2F",
        "%2",
        "%e9",
        "9506000",
        "013435",
        "09506000134352",
        "9506000134352",
        "106141412345678908",
        "0",
        "1",
        "12",
        "é",
        "?",
        "#",
        " ",
        ":",
        "A",
        "x-y_z",
        "'",
        "(",
        "=",
    ];
}
