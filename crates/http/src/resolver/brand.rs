//! A brand's view of one product (a GTIN) over a period, for a signed-in party:
//! `/lotline/v1/products/{gtin}?from=YYYY-MM-DD&to=YYYY-MM-DD`. Its lots, their volume, the
//! origins by co-op and country, the share of the volume that is EUDR-eligible, certified and
//! traced to plots, and the anomalies its traces meet; `&format=csv` gives one row per lot,
//! `&format=geojson` the EUDR GeoJSON of every plot. Each lot is answered in the caller's own
//! view (`Service::product_view`), so a brand sees of a lot what it would see of it anywhere.
//!
//! Shares are weighted by each lot's produced quantity when every lot has the same unit, else
//! each lot counts once. Signing in (`/lotline/v1/session`) exchanges the party's token for a
//! session cookie ([`crate::session`]).

use std::collections::{BTreeMap, BTreeSet};

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use lotline_domain::Anomaly;
use lotline_domain::audit::eudr::Verdict;
use lotline_domain::gs1::DIGITAL_LINK_ROOT;
use lotline_service::Who;
use lotline_service::queries::page::{ProductLot, ProductView};
use maud::{Markup, html};
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use super::i18n::{self, Text};
use super::page::{self, document, origin_cells, origin_key, percent, short_lot, urlencode};
use super::{gtin, html_response};
use crate::routes::{Asked, Http, caller};
use crate::session::{self, COOKIE, SESSION_LIFETIME};
use crate::{Peer, Problem};

/// The largest sign-in form lotline reads.
const MAX_FORM: usize = 16 * 1024;

/// The figures of a product view.
struct Figures<'a> {
    /// Volume per unit.
    volume: BTreeMap<String, Decimal>,
    /// Each lot's weight in the shares (its volume, or 1 when units differ), by lot index.
    weights: Vec<Decimal>,
    eudr: Decimal,
    certified: Decimal,
    traced: Decimal,
    /// (co-op, country) → share of the whole, largest first.
    origins: Vec<((String, String), Decimal)>,
    anomalies: Vec<&'a Anomaly>,
}

/// The share of a lot's content traced to a registered plot.
fn traced(lot: &ProductLot) -> Decimal {
    lot.trace
        .trace
        .origins
        .iter()
        .filter(|o| o.known && o.plot.is_some())
        .map(|o| o.share)
        .sum()
}

fn certified(lot: &ProductLot) -> bool {
    !lot.state.state.claims.is_empty()
}

fn figures(view: &ProductView) -> Figures<'_> {
    let quantity = |l: &ProductLot| l.state.state.produced.clone();
    let mut volume: BTreeMap<String, Decimal> = BTreeMap::new();
    for q in view.lots.iter().filter_map(quantity) {
        *volume.entry(q.unit.to_string()).or_default() += q.amount;
    }
    let one_unit = volume.len() == 1 && view.lots.iter().all(|l| quantity(l).is_some());
    let weights: Vec<Decimal> = view
        .lots
        .iter()
        .map(|l| match quantity(l) {
            Some(q) if one_unit => q.amount,
            _ => Decimal::ONE,
        })
        .collect();
    let total: Decimal = weights.iter().sum();
    let share = |pick: &dyn Fn(&ProductLot) -> Decimal| {
        if total.is_zero() {
            return Decimal::ZERO;
        }
        view.lots
            .iter()
            .zip(&weights)
            .map(|(l, w)| pick(l) * w)
            .sum::<Decimal>()
            / total
    };
    let flag = |b: bool| if b { Decimal::ONE } else { Decimal::ZERO };
    let mut origins: BTreeMap<(String, String), Decimal> = BTreeMap::new();
    for (lot, weight) in view.lots.iter().zip(&weights) {
        if total.is_zero() {
            break;
        }
        for o in &lot.trace.trace.origins {
            *origins
                .entry(origin_key(&view.co_ops, &lot.trace, o))
                .or_default() += o.share * weight / total;
        }
    }
    let mut origins: Vec<_> = origins.into_iter().collect();
    origins.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut seen = BTreeSet::new();
    let anomalies = view
        .lots
        .iter()
        .flat_map(|l| {
            l.trace
                .trace
                .anomalies
                .iter()
                .chain(&l.state.state.anomalies)
        })
        .filter(|a| seen.insert(a.id()))
        .collect();
    Figures {
        eudr: share(&|l| flag(l.eudr.report.verdict == Verdict::Traceable)),
        certified: share(&|l| flag(certified(l))),
        traced: share(&traced),
        volume,
        weights,
        origins,
        anomalies,
    }
}

/// One CSV field, quoted when it needs to be, and never read as a formula by a spreadsheet.
fn csv_field(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@']) {
        format!("'{text}")
    } else {
        text.to_string()
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

/// One row per lot.
fn csv(view: &ProductView) -> String {
    let mut out = String::from(
        "lot,created,quantity,unit,holder,eudr_verdict,certified,claims,traced_share,origins,co_ops,countries,anomalies\r\n",
    );
    for lot in &view.lots {
        let s = &lot.state.state;
        let co_ops: BTreeSet<&str> = lot
            .trace
            .trace
            .origins
            .iter()
            .filter_map(|o| view.co_ops.get(&o.lot).map(String::as_str))
            .collect();
        let countries: BTreeSet<&str> = lot
            .trace
            .plots
            .values()
            .map(|p| p.country.as_str())
            .collect();
        let row = [
            s.lot.clone(),
            s.created_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
            s.produced
                .as_ref()
                .map(|q| q.amount.to_string())
                .unwrap_or_default(),
            s.produced
                .as_ref()
                .map(|q| q.unit.to_string())
                .unwrap_or_default(),
            s.holder.clone().unwrap_or_default(),
            lot.eudr.report.verdict.as_str().to_string(),
            certified(lot).to_string(),
            s.claims.join(" "),
            traced(lot).round_dp(4).to_string(),
            lot.trace.trace.origins.len().to_string(),
            co_ops.into_iter().collect::<Vec<_>>().join(" "),
            countries.into_iter().collect::<Vec<_>>().join(" "),
            lot.trace.trace.anomalies.len().to_string(),
        ];
        let row: Vec<String> = row.iter().map(|f| csv_field(f)).collect();
        out.push_str(&row.join(","));
        out.push_str("\r\n");
    }
    out
}

/// Every plot of every lot as one EUDR FeatureCollection: one feature per plot, naming every
/// lot of the view it is an origin of.
fn geojson(view: &ProductView) -> Value {
    let mut plots: BTreeMap<String, Value> = BTreeMap::new();
    for lot in &view.lots {
        let features = lot.eudr.geojson["features"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for mut feature in features {
            let plot = feature["properties"]["lotline:plot"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            match plots.get_mut(&plot) {
                Some(kept) => {
                    let more = feature["properties"]["lotline:originLots"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default();
                    if let Some(lots) = kept["properties"]["lotline:originLots"].as_array_mut() {
                        for l in more {
                            if !lots.contains(&l) {
                                lots.push(l);
                            }
                        }
                    }
                }
                None => {
                    if let Some(props) = feature["properties"].as_object_mut() {
                        props.insert("lotline:lots".into(), json!([]));
                    }
                    plots.insert(plot.clone(), feature);
                }
            }
            if let Some(lots) = plots
                .get_mut(&plot)
                .and_then(|f| f["properties"]["lotline:lots"].as_array_mut())
            {
                lots.push(json!(lot.state.state.lot));
            }
        }
    }
    let mut collection = Map::new();
    collection.insert("type".into(), json!("FeatureCollection"));
    collection.insert(
        "features".into(),
        Value::Array(plots.into_values().collect()),
    );
    Value::Object(collection)
}

/// The view as a page.
fn render(t: &Text, gtin: &str, view: &ProductView, period: &Period, here: &str) -> Markup {
    let f = figures(view);
    let query = period.query();
    let body = html! {
        header {
            p.kicker { (t.view_title) }
            h1 { (t.gtin) " " (gtin) }
            form.period method="get" action=(here) {
                fieldset {
                    legend { (t.period) }
                    label { (t.from) " " input type="date" name="from" value=(period.from.map(|d| d.to_string()).unwrap_or_default()); }
                    " "
                    label { (t.to) " " input type="date" name="to" value=(period.to.map(|d| d.to_string()).unwrap_or_default()); }
                    " "
                    button type="submit" { (t.show) }
                }
            }
        }
        section aria-labelledby="figures" {
            h2 #figures { (i18n::fill(t.lots_count, view.lots.len())) }
            @if view.truncated { p.warn { (t.view_more) } }
            dl.facts {
                dt { (t.volume) }
                dd { @for (i, (unit, amount)) in f.volume.iter().enumerate() { @if i > 0 { ", " } (amount) " " (unit) } }
                dt { (t.eudr_share) } dd.eudr-share { (percent(f.eudr)) }
                dt { (t.certified_share) } dd.certified-share { (percent(f.certified)) }
                dt { (t.traced_share) } dd.traced-share { (percent(f.traced)) }
            }
            p {
                a href={(here) "?" (query) "format=csv"} download { (t.download_csv) } " · "
                a href={(here) "?" (query) "format=geojson"} download { (t.download_geojson) }
            }
        }
        section aria-labelledby="origins" {
            h2 #origins { (t.origins) }
            table {
                caption { (t.shares) }
                thead { tr { th scope="col" { (t.co_op) } th scope="col" { (t.country) } th scope="col" { (t.share) } } }
                tbody {
                    @for ((co_op, country), share) in &f.origins {
                        tr {
                            (origin_cells(t, co_op, country, &view.co_op_names))
                            td.num { (percent(*share)) }
                        }
                    }
                }
            }
        }
        section aria-labelledby="lots" {
            h2 #lots { (t.lot) }
            table.lots {
                thead { tr {
                    th scope="col" { (t.lot) } th scope="col" { (t.created) } th scope="col" { (t.volume) }
                    th scope="col" { (t.eudr) } th scope="col" { (t.certified_share) } th scope="col" { (t.traced_share) }
                } }
                tbody {
                    @for (lot, _) in view.lots.iter().zip(&f.weights) {
                        @let s = &lot.state.state;
                        tr {
                            td { a href=(s.lot.strip_prefix(DIGITAL_LINK_ROOT).unwrap_or(&s.lot)) { (short_lot(&s.lot)) } }
                            td { (s.created_at.map(|t| t.date_naive().to_string()).unwrap_or_default()) }
                            td.num { (s.produced.as_ref().map(|q| q.to_string()).unwrap_or_default()) }
                            td { (match lot.eudr.report.verdict {
                                Verdict::Traceable => t.traceable,
                                Verdict::NotTraceable => t.not_traceable,
                                Verdict::NotApplicable => t.not_applicable,
                            }) }
                            td { (if certified(lot) { s.claims.join(", ") } else { "—".to_string() }) }
                            td.num { (percent(traced(lot))) }
                        }
                    }
                }
            }
        }
        section aria-labelledby="anomalies" {
            h2 #anomalies { (t.anomalies) " (" (f.anomalies.len()) ")" }
            ul.small { @for a in &f.anomalies { li { code { (a.kind.as_str()) } " " (a.lot) ": " (a.explanation) } } }
        }
        form method="post" action="/lotline/v1/session/end" { button type="submit" { (t.sign_out) } }
    };
    document(t, &format!("{} {gtin}", t.view_title), here, body)
}

/// The period a view covers, from its `from` and `to` parameters.
#[derive(Default)]
struct Period {
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
}

impl Period {
    /// The period's parameters as a query string prefix (`from=…&to=…&`).
    fn query(&self) -> String {
        [("from", self.from), ("to", self.to)]
            .iter()
            .filter_map(|(n, d)| d.map(|d| format!("{n}={d}&")))
            .collect()
    }
}

fn date(name: &str, value: Option<&str>) -> Result<Option<NaiveDate>, Problem> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => NaiveDate::parse_from_str(v, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| Problem::parameter(format!("{name}: {v:?} is not a date (YYYY-MM-DD)"))),
    }
}

fn params(uri: &Uri) -> Vec<(String, String)> {
    form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .map(|(n, v)| (n.into_owned(), v.into_owned()))
        .collect()
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn text_for(params: &[(String, String)], headers: &HeaderMap) -> &'static Text {
    i18n::choose(
        param(params, "lang"),
        headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
    )
}

/// A 303 to `location` (a path of this server).
pub(super) fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// `GET /lotline/v1/products/{gtin}`: the brand's view, or the way to sign in first.
pub(crate) async fn brand_view(
    State(http): State<Http>,
    Path(gtin_text): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    asked: Result<Asked, Problem>,
) -> Response {
    let given = params(&uri);
    let t = text_for(&given, &headers);
    let format = param(&given, "format").unwrap_or("html").to_string();
    let page = format == "html";
    let fail = |problem: Problem| {
        if page {
            html_response(
                problem.status,
                page::error(t, t.bad_request, &problem.detail),
            )
        } else {
            problem.into_response()
        }
    };
    let here = uri.path().to_string();
    let sign_in = format!("/lotline/v1/session?return={}", urlencode(&uri.to_string()));
    let asked = match asked {
        Ok(a) if a.caller.who != Who::Anonymous => a,
        Ok(_)
        | Err(Problem {
            status: StatusCode::UNAUTHORIZED,
            ..
        }) if page => {
            return see_other(&sign_in);
        }
        Ok(_) => {
            return fail(Problem::new(
                StatusCode::UNAUTHORIZED,
                "SecurityException",
                "a product view needs a credential: a bearer token, or sign in at /lotline/v1/session",
            ));
        }
        Err(problem) => return fail(problem),
    };
    let found = async {
        if !["html", "csv", "geojson"].contains(&format.as_str()) {
            return Err(Problem::parameter(format!(
                "format: {format:?} is not html, csv or geojson"
            )));
        }
        let gtin = gtin(&gtin_text)?;
        let period = Period {
            from: date("from", param(&given, "from"))?,
            to: date("to", param(&given, "to"))?,
        };
        let prefix = format!("{DIGITAL_LINK_ROOT}/01/{gtin}/10/");
        let view = http
            .service
            .product_view(&asked.caller, prefix, period.from, period.to)
            .await?;
        Ok(match format.as_str() {
            "csv" => {
                let mut response = csv(&view).into_response();
                let headers = response.headers_mut();
                headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/csv; charset=utf-8"),
                );
                if let Ok(v) =
                    HeaderValue::from_str(&format!("attachment; filename=\"lots-{gtin}.csv\""))
                {
                    headers.insert(header::CONTENT_DISPOSITION, v);
                }
                response
            }
            "geojson" => {
                let mut response = geojson(&view).to_string().into_response();
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/geo+json"),
                );
                response
            }
            _ => html_response(
                StatusCode::OK,
                render(t, gtin.as_str(), &view, &period, &here),
            ),
        })
    }
    .await;
    found.unwrap_or_else(fail)
}

/// Where a sign-in may send the browser back to: a path on this server, nothing else.
fn local_path(target: Option<&str>) -> String {
    match target {
        Some(p) if p.starts_with('/') && !p.starts_with("//") && !p.contains('\\') => p.to_string(),
        _ => "/".to_string(),
    }
}

fn sign_in_page(t: &Text, back: &str, error: Option<&str>) -> Markup {
    document(
        t,
        t.sign_in,
        "/lotline/v1/session",
        html! {
            h1 { (t.sign_in) }
            @if let Some(e) = error { p.error.warn role="alert" { (e) } }
            form method="post" action="/lotline/v1/session" {
                input type="hidden" name="return" value=(back);
                p { label for="token" { (t.token_label) } }
                p { input #token type="password" name="token" autocomplete="current-password" required; }
                p { button type="submit" { (t.sign_in) } }
            }
        },
    )
}

/// `GET /lotline/v1/session`: the sign-in form.
pub(crate) async fn sign_in_form(uri: Uri, headers: HeaderMap) -> Response {
    let given = params(&uri);
    let t = text_for(&given, &headers);
    html_response(
        StatusCode::OK,
        sign_in_page(t, &local_path(param(&given, "return")), None),
    )
}

/// `POST /lotline/v1/session` (`token=…&return=…`, form-encoded): a session for the token's
/// party, and back to where the browser came from.
pub(crate) async fn sign_in(
    State(http): State<Http>,
    headers: HeaderMap,
    peer: Option<Extension<Peer>>,
    body: Body,
) -> Response {
    let t = text_for(&[], &headers);
    let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM).await else {
        return html_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            sign_in_page(t, "/", Some("the form is too large")),
        );
    };
    let form: Vec<(String, String)> = form_urlencoded::parse(&bytes)
        .map(|(n, v)| (n.into_owned(), v.into_owned()))
        .collect();
    let back = local_path(param(&form, "return"));
    let token = param(&form, "token").unwrap_or("").trim().to_string();
    let refused = |detail: &str| {
        html_response(
            StatusCode::UNAUTHORIZED,
            sign_in_page(t, &back, Some(detail)),
        )
    };
    if token.is_empty() {
        return refused("authorization: a token is required");
    }
    let checked = caller(
        &http.service,
        &HeaderMap::new(),
        Some(token.clone()),
        peer.as_ref().map(|p| &p.0),
    );
    match checked {
        Ok(c) if c.who != Who::Anonymous => {}
        Ok(_) => return refused("authorization: this token names no party"),
        Err(problem) => return refused(&problem.detail),
    }
    let Ok(id) = http.sessions.open(token) else {
        return html_response(
            StatusCode::SERVICE_UNAVAILABLE,
            sign_in_page(t, &back, Some("no session could be opened; try again")),
        );
    };
    let mut response = see_other(&back);
    if let Ok(cookie) = HeaderValue::from_str(&format!(
        "{COOKIE}={id}; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age={}",
        SESSION_LIFETIME.as_secs()
    )) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

/// `POST /lotline/v1/session/end`: signs out.
pub(crate) async fn sign_out(State(http): State<Http>, headers: HeaderMap) -> Response {
    if let Some(id) = session::cookie(&headers) {
        http.sessions.close(&id);
    }
    let mut response = see_other("/");
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "lotline_session=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0",
        ),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_never_formulas() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(csv_field("-1"), "'-1");
    }

    #[test]
    fn a_sign_in_returns_only_to_this_server() {
        assert_eq!(local_path(Some("/01/123?x=1")), "/01/123?x=1");
        assert_eq!(local_path(Some("//evil.example/x")), "/");
        assert_eq!(local_path(Some("https://evil.example/")), "/");
        assert_eq!(local_path(Some("/\\evil.example")), "/");
        assert_eq!(local_path(None), "/");
    }
}
