//! A GS1 Digital Link resolver for the lots in the log (GS1-Conformant Resolver Standard 1.1):
//! the QR code on a chocolate bar, a bag of coffee or a T-shirt carries
//! `https://<any domain>/01/{GTIN}/10/{lot}`, and whoever scans it gets the lot's public page.
//!
//! - `/01/{gtin}/10/{lot}`: the lot, `/01/{gtin}`: the product's lots. The GTIN may be written
//!   as GTIN-8, -12, -13 or -14 (its check digit is verified; a wrong one is a 400 that says
//!   so); the Host is ignored, so the same path on `id.gs1.org` or a brand's domain names the
//!   same lot.
//! - What comes back is negotiated: `Accept: text/html` (and anything that takes it, such as
//!   `*/*`) gets the page, `application/json` the public trace (the document `lotline trace LOT
//!   --public --json` prints), `application/linkset+json` the link set (RFC 9264). A
//!   `linkType` parameter picks instead: `linkset` or `all` for the link set, `gs1:pip` for the
//!   page, `gs1:traceability` for the trace; any other type gets the default link, the page.
//! - `/?epc=<EPC URN>` redirects to the identifier's Digital Link path.
//! - `/lotline/v1/lots/{lot}/page` answers the same for any lot id, GS1 or not.
//!
//! Every answer is the public view, whoever asks: a page is what a stranger sees. On a server
//! with access control it needs `serve --public-reads`, as any anonymous read does.

mod brand;
mod i18n;
mod map;
mod page;

pub(crate) use brand::{brand_view, sign_in, sign_in_form, sign_out};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use lotline_api::wire;
use lotline_domain::gs1::{DIGITAL_LINK_ROOT, Gtin, encode_digital_link_value};
use lotline_proto::documents;
use lotline_service::args;
use serde_json::{Value, json};

use crate::Problem;
use crate::routes::{Asked, Http, VIEW_HEADER};
use i18n::Text;

/// The link types lotline answers for a lot, with the GS1 vocabulary's full names.
const PIP: &str = "https://gs1.org/voc/pip";
const TRACEABILITY: &str = "https://gs1.org/voc/traceability";
const DEFAULT_LINK: &str = "https://gs1.org/voc/defaultLink";

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wants {
    Page,
    Json,
    Linkset,
}

/// The request's own parameters: `linkType` and `lang`. Others (a Digital Link's data
/// attributes, such as `?17=270101`) are left alone, as the resolver standard asks.
struct Asking {
    wants: Wants,
    text: &'static Text,
}

fn asking(uri: &Uri, headers: &HeaderMap) -> Asking {
    let params: Vec<(String, String)> =
        form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .map(|(n, v)| (n.into_owned(), v.into_owned()))
            .collect();
    let param = |name: &str| {
        params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let header_text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let wants = match param("linkType") {
        Some("linkset" | "all") => Wants::Linkset,
        Some("gs1:traceability") | Some(TRACEABILITY) => Wants::Json,
        Some(_) => Wants::Page,
        None => negotiate(header_text(header::ACCEPT)),
    };
    Asking {
        wants,
        text: i18n::choose(param("lang"), header_text(header::ACCEPT_LANGUAGE)),
    }
}

/// The values of an `Accept` or `Accept-Language` header with their weights (`q`, in
/// thousandths: RFC 9110 §12.4.2), in the order written.
pub(super) fn weighted(header: &str) -> impl Iterator<Item = (&str, u16)> {
    header.split(',').map(|range| {
        let mut parts = range.split(';');
        let value = parts.next().unwrap_or("").trim();
        let q = parts
            .find_map(|p| p.trim().strip_prefix("q="))
            .map_or(1000, |q| {
                q.trim()
                    .parse::<f32>()
                    .map_or(0, |q| (q.clamp(0.0, 1.0) * 1000.0) as u16)
            });
        (value, q)
    })
}

/// The best of what lotline offers by an `Accept` header (RFC 9110 §12.5.1): each offer weighs
/// what the most specific range matching it gives; the page wins a tie, then JSON.
fn negotiate(accept: Option<&str>) -> Wants {
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return Wants::Page;
    };
    let offers = [
        (Wants::Page, "text/html"),
        (Wants::Json, "application/json"),
        (Wants::Linkset, "application/linkset+json"),
    ];
    let weigh = |offer: &str| {
        let (kind, _) = offer.split_once('/').unwrap_or((offer, ""));
        let mut best: Option<(u8, u16)> = None;
        for (media, q) in weighted(accept) {
            let media = media.to_ascii_lowercase();
            let specificity =
                if media == offer || (offer == "text/html" && media == "application/xhtml+xml") {
                    3
                } else if media.strip_suffix("/*") == Some(kind) {
                    2
                } else if media == "*/*" {
                    1
                } else {
                    continue;
                };
            if best.is_none_or(|(s, _)| specificity > s) {
                best = Some((specificity, q));
            }
        }
        best.map_or(0, |(_, q)| q)
    };
    let mut chosen = (Wants::Page, 0);
    for (wants, offer) in offers {
        let q = weigh(offer);
        if q > chosen.1 {
            chosen = (wants, q);
        }
    }
    chosen.0
}

/// An error in the form asked for: a page for a browser, a problem document otherwise.
fn failure(asking: &Asking, problem: Problem) -> Response {
    if asking.wants != Wants::Page {
        return problem.into_response();
    }
    let t = asking.text;
    let title = match problem.status {
        StatusCode::NOT_FOUND => t.not_found,
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => t.unavailable,
        s if s.is_client_error() => t.bad_request,
        s => s.canonical_reason().unwrap_or("error"),
    };
    let detail = match problem.status {
        StatusCode::NOT_FOUND => format!("{} ({})", t.not_found_text, problem.detail),
        _ => problem.detail.clone(),
    };
    let mut response =
        (problem.status, page::error(t, title, &detail).into_string()).into_response();
    html_headers(response.headers_mut());
    response
}

/// A page with `status`.
fn html_response(status: StatusCode, markup: maud::Markup) -> Response {
    let mut response = (status, markup.into_string()).into_response();
    html_headers(response.headers_mut());
    response
}

fn html_headers(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::VARY,
        HeaderValue::from_static("Accept, Accept-Language"),
    );
}

/// The answer with the headers every resolver answer carries: what it varies by, and where
/// the link set is.
fn resolved(mut response: Response, here: &str) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::VARY,
        HeaderValue::from_static("Accept, Accept-Language"),
    );
    if let Ok(link) = HeaderValue::from_str(&format!(
        "<{here}?linkType=linkset>; rel=\"linkset\"; type=\"application/linkset+json\""
    )) {
        headers.insert(header::LINK, link);
    }
    response
}

fn json_answer(body: &Value, content_type: &'static str, view: Option<&'static str>) -> Response {
    let mut response = (StatusCode::OK, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Some(view) = view {
        headers.insert(
            HeaderName::from_static(VIEW_HEADER),
            HeaderValue::from_static(view),
        );
    }
    response
}

/// A GTIN as written in a Digital Link path, normalised to 14 digits.
fn gtin(text: &str) -> Result<Gtin, Problem> {
    Gtin::parse(text).map_err(|e| Problem::parameter(format!("01 (GTIN) {text:?}: {e}")))
}

/// The path of an identifier's canonical Digital Link (on this server).
fn path_of(digital_link: &str) -> &str {
    digital_link
        .strip_prefix(DIGITAL_LINK_ROOT)
        .unwrap_or(digital_link)
}

/// `GET /01/{gtin}/10/{lot}`: a lot's page, public trace or link set.
pub(crate) async fn lot(
    State(http): State<Http>,
    Path((gtin_text, lot_text)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    asked: Result<Asked, Problem>,
) -> Response {
    let lot = gtin(&gtin_text).and_then(|gtin| {
        Ok(args::lot(&format!(
            "{DIGITAL_LINK_ROOT}/01/{gtin}/10/{}",
            encode_digital_link_value(&lot_text)
        ))?)
    });
    resolve_lot(&http, asking(&uri, &headers), asked, lot).await
}

/// `GET /lotline/v1/lots/{lot}/page`: the same answers for any lot id, GS1 or not (a lot named
/// by a Digital Link or an EPC URN there is the same lot as at its Digital Link path).
pub(crate) async fn lot_by_id(
    State(http): State<Http>,
    Path(lot_text): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    asked: Result<Asked, Problem>,
) -> Response {
    let lot = args::lot(&lot_text).map_err(Problem::from);
    resolve_lot(&http, asking(&uri, &headers), asked, lot).await
}

/// The GTIN of a canonical Digital Link of a lot, if it is one.
fn gtin_of(lot: &str) -> Option<&str> {
    lot.strip_prefix(DIGITAL_LINK_ROOT)?
        .strip_prefix("/01/")?
        .split_once("/10/")
        .map(|(gtin, _)| gtin)
}

/// The caller of a resolver answer, asking for the public view whoever it is.
fn public(asked: Result<Asked, Problem>) -> Result<Asked, Problem> {
    let mut asked = asked?;
    asked.caller.asked_public = true;
    Ok(asked)
}

/// A lot's page, public trace or link set, as `asking` asks.
async fn resolve_lot(
    http: &Http,
    asking: Asking,
    asked: Result<Asked, Problem>,
    lot: Result<String, Problem>,
) -> Response {
    let asked = match public(asked) {
        Ok(asked) => asked,
        Err(problem) => return failure(&asking, problem),
    };
    let found = async {
        let lot = lot?;
        let here = match gtin_of(&lot) {
            Some(_) => path_of(&lot).to_string(),
            None => format!("/lotline/v1/lots/{}/page", page::urlencode(&lot)),
        };
        let response = match asking.wants {
            Wants::Json => {
                let trace = http.service.trace_back(&asked.caller, lot).await?;
                json_answer(
                    &documents::trace_json(&wire::trace_back(&trace)),
                    "application/json",
                    Some(trace.view.as_str()),
                )
            }
            Wants::Linkset => {
                http.service.lot(&asked.caller, lot.clone()).await?;
                json_answer(&lot_linkset(&lot, &here), "application/linkset+json", None)
            }
            Wants::Page => {
                let found = http.service.lot_page(&asked.caller, lot.clone()).await?;
                let markup = page::lot(
                    asking.text,
                    &found,
                    gtin_of(&lot),
                    &here,
                    asked.caller.public_geometry,
                );
                html_response(StatusCode::OK, markup)
            }
        };
        Ok::<_, Problem>(resolved(response, &here))
    }
    .await;
    found.unwrap_or_else(|problem| failure(&asking, problem))
}

/// `GET /01/{gtin}`: the product's lots.
pub(crate) async fn product(
    State(http): State<Http>,
    Path(gtin_text): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    asked: Result<Asked, Problem>,
) -> Response {
    let asking = asking(&uri, &headers);
    let asked = match public(asked) {
        Ok(asked) => asked,
        Err(problem) => return failure(&asking, problem),
    };
    let found = async {
        let gtin = gtin(&gtin_text)?;
        let here = format!("/01/{gtin}");
        let prefix = format!("{DIGITAL_LINK_ROOT}/01/{gtin}/10/");
        let lots = http.service.lots_with_prefix(&asked.caller, prefix).await?;
        let response = match asking.wants {
            Wants::Json => json_answer(
                &json!({
                    "gtin": gtin.as_str(),
                    "lots": lots.lots.iter().map(|l| json!({"lot": l, "page": path_of(l)})).collect::<Vec<_>>(),
                    "truncated": lots.truncated,
                }),
                "application/json",
                None,
            ),
            Wants::Linkset => json_answer(
                &json!({"linkset": [{
                    "anchor": format!("{DIGITAL_LINK_ROOT}{here}"),
                    PIP: [{"href": here, "title": "Lots of this product", "type": "text/html", "hreflang": languages()}],
                    DEFAULT_LINK: [{"href": here}],
                }]}),
                "application/linkset+json",
                None,
            ),
            Wants::Page => {
                html_response(
                    StatusCode::OK,
                    page::product(asking.text, gtin.as_str(), &lots, &here),
                )
            }
        };
        Ok::<_, Problem>(resolved(response, &here))
    }
    .await;
    found.unwrap_or_else(|problem| failure(&asking, problem))
}

fn languages() -> Vec<&'static str> {
    i18n::LANGUAGES.iter().map(|l| l.code).collect()
}

/// A lot's link set (RFC 9264, in the form of GS1's resolver standard): its page (the default
/// link) and its public trace.
fn lot_linkset(lot: &str, here: &str) -> Value {
    let trace = format!(
        "/lotline/v1/lots/{}/trace?public=true",
        page::urlencode(lot)
    );
    json!({"linkset": [{
        "anchor": lot,
        PIP: [{"href": here, "title": "Where this lot comes from", "type": "text/html", "hreflang": languages()}],
        TRACEABILITY: [{"href": trace, "title": "Trace back to origin plots (public view)", "type": "application/json"}],
        DEFAULT_LINK: [{"href": here}],
    }]})
}

/// `/?epc=<EPC URN>`: a redirect to the identifier's Digital Link path (303), or why not.
pub(crate) fn epc_redirect(epc: &str, headers: &HeaderMap) -> Response {
    let text = i18n::choose(
        None,
        headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
    );
    let asking = Asking {
        wants: negotiate(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok())),
        text,
    };
    let target = args::lot(epc)
        .map_err(Problem::from)
        .and_then(|id| {
            id.strip_prefix(DIGITAL_LINK_ROOT)
                .map(str::to_string)
                .ok_or_else(|| {
                    Problem::parameter(format!(
                        "epc: {epc:?} is not a GS1 identifier (an EPC URN such as urn:epc:class:lgtin:…)"
                    ))
                })
        });
    match target {
        Ok(path) => brand::see_other(&path),
        Err(problem) => failure(&asking, problem),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_browser_gets_the_page_a_program_gets_what_it_names() {
        let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
        assert_eq!(negotiate(Some(browser)), Wants::Page);
        assert_eq!(negotiate(None), Wants::Page);
        assert_eq!(negotiate(Some("*/*")), Wants::Page);
        assert_eq!(negotiate(Some("application/json")), Wants::Json);
        assert_eq!(
            negotiate(Some("application/json, text/html;q=0.5")),
            Wants::Json
        );
        assert_eq!(negotiate(Some("application/linkset+json")), Wants::Linkset);
        assert_eq!(
            negotiate(Some("text/html;q=0, application/*;q=0.4")),
            Wants::Json
        );
    }
}
