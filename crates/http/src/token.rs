//! `nextPageToken`: the query's parameters and where the next page starts, so a token needs no
//! state on the server (it never expires, and any node of a cluster answers it). It grants
//! nothing: the caller's view is decided again on every page.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use lotline_service::queries::epcis::Cursor;
use serde_json::{Value, json};

use crate::Problem;

/// The token of the page after `cursor` of the query with `params`.
pub fn encode(params: &[(String, String)], cursor: Cursor) -> String {
    let at = match cursor {
        Cursor::After(seq) => format!("a{seq}"),
        Cursor::Offset(n) => format!("o{n}"),
    };
    let body = json!({ "q": params, "c": at });
    URL_SAFE_NO_PAD.encode(body.to_string())
}

/// The parameters and cursor a token carries.
pub fn decode(token: &str) -> Result<(Vec<(String, String)>, Cursor), Problem> {
    let bad = || Problem::parameter("nextPageToken: not a token lotline gave");
    let bytes = URL_SAFE_NO_PAD.decode(token.trim()).map_err(|_| bad())?;
    let body: Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    let params = body
        .get("q")
        .and_then(Value::as_array)
        .ok_or_else(bad)?
        .iter()
        .map(|pair| match pair.as_array().map(Vec::as_slice) {
            Some([Value::String(n), Value::String(v)]) => Ok((n.clone(), v.clone())),
            _ => Err(bad()),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let at = body.get("c").and_then(Value::as_str).ok_or_else(bad)?;
    let cursor = if let Some(seq) = at.strip_prefix('a') {
        Cursor::After(seq.parse().map_err(|_| bad())?)
    } else if let Some(n) = at.strip_prefix('o') {
        Cursor::Offset(n.parse().map_err(|_| bad())?)
    } else {
        return Err(bad());
    };
    Ok((params, cursor))
}

/// The token of a listing's page after the identifier `after`.
pub fn encode_listing(resource: &str, after: &str) -> String {
    URL_SAFE_NO_PAD.encode(json!({ "r": resource, "i": after }).to_string())
}

/// The identifier a listing's token continues after; the token must be one of `resource`'s.
pub fn decode_listing(resource: &str, token: &str) -> Result<String, Problem> {
    let bad = || Problem::parameter(format!("nextPageToken: not a token of {resource}"));
    let bytes = URL_SAFE_NO_PAD.decode(token.trim()).map_err(|_| bad())?;
    let body: Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    if body.get("r").and_then(Value::as_str) != Some(resource) {
        return Err(bad());
    }
    body.get("i")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_garbage_is_refused() {
        let params = vec![("MATCH_epc".to_string(), "urn:x|y".to_string())];
        for cursor in [Cursor::After(42), Cursor::Offset(30)] {
            assert_eq!(
                decode(&encode(&params, cursor)).unwrap(),
                (params.clone(), cursor)
            );
        }
        for garbage in [
            "",
            "%%%",
            "e30",
            &URL_SAFE_NO_PAD.encode(r#"{"q":[],"c":"z1"}"#),
        ] {
            assert_eq!(decode(garbage).unwrap_err().status.as_u16(), 400);
        }
        let token = encode_listing("/epcs", "urn:x");
        assert_eq!(decode_listing("/epcs", &token).unwrap(), "urn:x");
        assert!(decode_listing("/readPoints", &token).is_err());
        assert!(decode_listing("/epcs", &encode(&params, Cursor::After(1))).is_err());
    }
}
