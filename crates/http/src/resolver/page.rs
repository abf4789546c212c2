//! The pages, as server-rendered HTML that reads without JavaScript: semantic elements, one
//! stylesheet inline, the map as inline SVG with a text alternative, nothing fetched from
//! anywhere else.

use std::collections::{BTreeMap, BTreeSet};

use lotline_domain::audit::chain::StageEntry;
use lotline_domain::audit::eudr::Verdict;
use lotline_domain::lineage::Origin;
use lotline_service::queries::page::{LotPage, ProductLots};
use lotline_service::queries::provenance::TraceBackAnswer;
use lotline_service::{Level, PublicGeometry};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use rust_decimal::Decimal;

use super::i18n::{self, LANGUAGES, Text};
use super::map::{self, MapPlot};

/// The pages' stylesheet.
const STYLE: &str = include_str!("page.css");

/// A whole page around `body`.
pub(super) fn document(t: &Text, title: &str, here: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(t.code) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · lotline" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                main { (body) }
                footer {
                    nav aria-label=(t.languages) {
                        span { (t.languages) ": " }
                        @for lang in LANGUAGES {
                            @if lang.code == t.code {
                                strong lang=(lang.code) { (lang.name) }
                            } @else {
                                a href={(here) "?lang=" (lang.code)} lang=(lang.code) hreflang=(lang.code) { (lang.name) }
                            }
                            " "
                        }
                    }
                    p.small { "lotline" }
                }
            }
        }
    }
}

/// An error page: `title` and what went wrong.
pub(crate) fn error(t: &Text, title: &str, detail: &str) -> Markup {
    document(
        t,
        title,
        "",
        html! {
            h1 { (title) }
            p.error { (detail) }
        },
    )
}

/// A share in [0, 1] as a percentage with one decimal.
pub(super) fn percent(share: Decimal) -> String {
    format!("{:.1} %", share * Decimal::ONE_HUNDRED)
}

/// A lot id for people: the lot of a Digital Link, else the id.
pub(super) fn short_lot(lot: &str) -> &str {
    lot.rsplit_once("/10/").map_or(lot, |(_, l)| l)
}

/// The (co-op, country) an origin counts under in the shares by co-op and country: the co-op
/// its farm delivered through, and its plot's country (empty when unknown).
pub(super) fn origin_key(
    co_ops: &BTreeMap<String, String>,
    trace: &TraceBackAnswer,
    origin: &Origin,
) -> (String, String) {
    let co_op = co_ops.get(&origin.lot).cloned().unwrap_or_default();
    let country = origin
        .plot
        .as_ref()
        .and_then(|p| trace.plots.get(p))
        .map(|p| p.country.clone())
        .unwrap_or_default();
    (co_op, country)
}

/// The co-op (its name over its id, when registered) and country cells of a shares row.
pub(super) fn origin_cells(
    t: &Text,
    co_op: &str,
    country: &str,
    names: &BTreeMap<String, String>,
) -> Markup {
    html! {
        td.co-op {
            @if co_op.is_empty() { em { (t.no_co_op) } }
            @else if let Some(name) = names.get(co_op) { (name) br; small.id { (co_op) } }
            @else { (co_op) }
        }
        td { @if country.is_empty() { (t.unknown) } @else { (country) } }
    }
}

/// One row of the origins table.
#[derive(Default)]
struct ShareRow {
    share: Decimal,
    plots: BTreeSet<String>,
}

/// The page of a lot. `here` is the page's path (its JSON answer is `here?linkType=gs1:traceability`).
pub(crate) fn lot(
    t: &Text,
    page: &LotPage,
    gtin: Option<&str>,
    here: &str,
    geometry: PublicGeometry,
) -> Markup {
    let trace = &page.trace.trace;
    let report = &page.chain.report;
    let eudr = &page.eudr.report;
    let product = report
        .product
        .clone()
        .or_else(|| eudr.product.clone())
        .unwrap_or_default();
    let chain = report.chain.clone().or_else(|| eudr.chain.clone());

    // Shares by co-op and country, largest first.
    let mut rows: BTreeMap<(String, String), ShareRow> = BTreeMap::new();
    for origin in &trace.origins {
        let row = rows
            .entry(origin_key(&page.co_ops, &page.trace, origin))
            .or_default();
        row.share += origin.share;
        row.plots.extend(origin.plot.clone());
    }
    let mut rows: Vec<_> = rows.into_iter().collect();
    rows.sort_by(|a, b| b.1.share.cmp(&a.1.share).then(a.0.cmp(&b.0)));

    let plots: Vec<MapPlot> = eudr
        .plots
        .iter()
        .map(|p| MapPlot {
            id: p.plot.clone(),
            country: p.country.clone().unwrap_or_default(),
            geometry: p.geometry.clone().unwrap_or_default(),
            issue: !p.issues.is_empty(),
        })
        .collect();
    let label = format!(
        "{} ({}: {})",
        i18n::fill(t.map_label, plots.len()),
        t.map_countries,
        {
            let mut c: Vec<&str> = plots.iter().map(|p| p.country.as_str()).collect();
            c.sort_unstable();
            c.dedup();
            c.join(", ")
        }
    );
    let drawn = map::draw(&plots, &label);
    let generalised = (page.trace.view == Level::Public)
        .then_some(match geometry {
            PublicGeometry::Exact => None,
            PublicGeometry::Rounded => Some(t.geometry_rounded),
            PublicGeometry::Region => Some(t.geometry_region),
        })
        .flatten();

    let mut shown: Vec<(&str, &str)> = report
        .stages
        .iter()
        .flat_map(|s| s.entries.iter())
        .map(|e| (e.event_id.as_str(), e.org.as_str()))
        .collect();
    shown.sort_unstable();
    shown.dedup();
    let verdict = match eudr.verdict {
        Verdict::Traceable => t.traceable,
        Verdict::NotTraceable => t.not_traceable,
        Verdict::NotApplicable => t.not_applicable,
    };
    let title = if product.is_empty() {
        short_lot(&trace.lot).to_string()
    } else {
        format!("{product} · {}", short_lot(&trace.lot))
    };
    let body = html! {
        header {
            p.kicker { (t.lot_title) }
            h1 { (if product.is_empty() { short_lot(&trace.lot) } else { &product }) }
            dl.facts {
                @if !product.is_empty() { dt { (t.product) } dd { (product) } }
                @if let Some(gtin) = gtin { dt { (t.gtin) } dd { (gtin) } }
                dt { (t.lot) } dd { code { (short_lot(&trace.lot)) } }
                @if let Some(chain) = &chain { dt { (t.chain) } dd { (chain) } }
                @if let Some(q) = &trace.produced { dt { (t.produced) } dd { (q.to_string()) } }
                @if let Some(c) = page.trace.custody { dt { (t.custody) } dd { (c.as_str()) } }
            }
        }
        section aria-labelledby="journey" {
            h2 #journey { (t.journey) }
            ol.stages {
                @for stage in &report.stages {
                    li.stage.missing[stage.missing] {
                        h3 { (i18n::stage(t, &stage.name)) }
                        @if stage.entries.is_empty() {
                            p.small { (t.stage_missing) }
                        }
                        @if stage.entries.len() > FEW {
                            (stage_summary(t, &stage.entries, &page.countries))
                            details {
                                summary { (t.show_each) }
                                (stage_entries(t, &stage.entries[..stage.entries.len().min(MANY)], &page.countries))
                                @if stage.entries.len() > MANY { p.small { (i18n::fill(t.more, stage.entries.len() - MANY)) } }
                            }
                        } @else {
                            (stage_entries(t, &stage.entries, &page.countries))
                        }
                    }
                }
            }
        }
        section aria-labelledby="origins" {
            h2 #origins { (t.origins) }
            @if let Some(svg) = drawn {
                figure {
                    (svg)
                    figcaption { (label) ". " (t.map_attribution) @if let Some(g) = generalised { " " (g) } }
                }
            } @else {
                p.small { (t.map_none) @if let Some(g) = generalised { " " (g) } }
            }
            @if let Some(p) = &trace.partial { p.warn { (t.partial) " " (p) } }
            table {
                caption { (t.shares) }
                thead { tr { th scope="col" { (t.co_op) } th scope="col" { (t.country) } th scope="col" { (t.share) } th scope="col" { (t.plots) } } }
                tbody {
                    @for ((co_op, country), row) in &rows {
                        tr {
                            (origin_cells(t, co_op, country, &page.co_op_names))
                            td.num { (percent(row.share)) }
                            td.num { (row.plots.len()) }
                        }
                    }
                }
            }
        }
        section aria-labelledby="eudr" {
            h2 #eudr { (t.eudr) }
            p.verdict.ok[eudr.verdict == Verdict::Traceable] { strong { (verdict) } }
            @if !eudr.reasons.is_empty() {
                h3 { (t.reasons) }
                ul { @for r in &eudr.reasons { li { (r) } } }
            }
            @if !trace.anomalies.is_empty() {
                p.warn { (i18n::fill(t.questions, trace.anomalies.len())) }
                ul.small { @for a in &trace.anomalies { li { code { (a.kind.as_str()) } ": " (a.explanation) } } }
            }
        }
        section aria-labelledby="verify" {
            h2 #verify { (t.verify) }
            p { (t.verify_intro) }
            pre.note { (page.checkpoint.note) }
            p.small { (t.verify_tree) ": " (page.checkpoint.checkpoint.size) }
            p { (t.verify_events) }
            @if shown.len() > FEW {
                details {
                    summary { (t.show_each) " (" (shown.len()) ")" }
                    (proof_list(t, &shown[..shown.len().min(MANY)]))
                    @if shown.len() > MANY { p.small { (i18n::fill(t.more, shown.len() - MANY)) } }
                }
            } @else {
                (proof_list(t, &shown))
            }
            p { (t.verify_how) }
            pre { "lotline proof EVENT_ID --server URL\nlotline verify --server URL" }
            p.small {
                a href="/lotline/v1/checkpoint" { "checkpoint (JSON)" } " · "
                a href="https://www.rfc-editor.org/rfc/rfc6962" { (t.rfc6962) } " · "
                a href={(here) "?linkType=gs1:traceability"} type="application/json" { (t.json) }
            }
        }
    };
    document(t, &title, here, body)
}

/// Stage entries a stage lists one by one; more are summed up, each one behind a disclosure.
const FEW: usize = 3;
/// Entries a disclosure lists at most: a lot of 700 origins keeps a page a phone can load.
const MANY: usize = 100;

/// Each entry of a stage: who, where, when, what, and the certificates valid that day.
fn stage_entries(t: &Text, entries: &[StageEntry], countries: &BTreeMap<String, String>) -> Markup {
    html! {
        @for e in entries {
            div.entry {
                p.org {
                    strong { (e.org_name.clone().unwrap_or_else(|| e.org.clone())) }
                    @if let Some(country) = countries.get(&e.org).filter(|c| !c.is_empty()) {
                        " · " span.country { (country) }
                    }
                    " · " time datetime=(e.date.to_string()) { (e.date.to_string()) }
                }
                p.small { (e.process) @if let Some(p) = &e.product { " · " (p) } }
                p.certs {
                    (t.certificates) ": "
                    @if e.certificates.is_empty() { em { (t.no_certificate) } }
                    @for (i, c) in e.certificates.iter().enumerate() {
                        @if i > 0 { ", " }
                        span.cert { (c.standard) " " (c.certificate_id)
                            @if let Some(to) = c.valid_to { " (" (t.valid_to) " " (to.to_string()) ")" }
                            @if c.self_declared { " (" (t.self_declared) ")" } }
                    }
                    @if let Some(l) = &e.lapsed { " " span.warn { (t.lapsed) ": " (l) } }
                }
            }
        }
    }
}

/// A stage of many entries in one paragraph: how many events by how many orgs, over which
/// dates, in which countries, under which certificates.
fn stage_summary(t: &Text, entries: &[StageEntry], countries: &BTreeMap<String, String>) -> Markup {
    let orgs: BTreeSet<&str> = entries.iter().map(|e| e.org.as_str()).collect();
    let places: BTreeSet<&str> = orgs
        .iter()
        .filter_map(|o| countries.get(*o))
        .map(String::as_str)
        .filter(|c| !c.is_empty())
        .collect();
    let first = entries.iter().map(|e| e.date).min();
    let last = entries.iter().map(|e| e.date).max();
    let certs: BTreeSet<String> = entries
        .iter()
        .flat_map(|e| e.certificates.iter())
        .map(|c| format!("{} {}", c.standard, c.certificate_id))
        .collect();
    html! {
        p.org {
            strong { (i18n::fill(t.stage_events, entries.len())) } " · "
            (i18n::fill(t.stage_orgs, orgs.len()))
            @if !places.is_empty() { " · " span.country { (places.into_iter().collect::<Vec<_>>().join(", ")) } }
            @if let (Some(first), Some(last)) = (first, last) {
                " · " time datetime=(first.to_string()) { (first.to_string()) }
                @if last != first { " – " time datetime=(last.to_string()) { (last.to_string()) } }
            }
        }
        p.certs {
            (t.certificates) ": "
            @if certs.is_empty() { em { (t.no_certificate) } }
            (certs.into_iter().collect::<Vec<_>>().join(", "))
        }
    }
}

/// Each event shown, linked to its inclusion proof.
fn proof_list(t: &Text, shown: &[(&str, &str)]) -> Markup {
    html! {
        ul.proofs {
            @for (event, org) in shown {
                li { code { (event) } " (" (org) ") — "
                    a href={"/lotline/v1/proofs/" (urlencode(event))} { (t.proof) } }
            }
        }
    }
}

/// The page of a product: its lots, each linking to its page.
pub(crate) fn product(t: &Text, gtin: &str, lots: &ProductLots, here: &str) -> Markup {
    let body = html! {
        header {
            p.kicker { (t.product_title) }
            h1 { (t.gtin) " " (gtin) }
        }
        @if lots.lots.is_empty() {
            p { (t.product_none) }
        } @else {
            ul.lots {
                @for lot in &lots.lots {
                    li { a href=(lot.strip_prefix(lotline_domain::gs1::DIGITAL_LINK_ROOT).unwrap_or(lot)) { (short_lot(lot)) } }
                }
            }
            @if lots.truncated { p.small { (t.product_more) } }
        }
        p { a href={"/lotline/v1/products/" (gtin)} { (t.brand_link) } }
    };
    document(t, &format!("{} {gtin}", t.gtin), here, body)
}

/// `text` percent-encoded for a path segment.
pub(crate) fn urlencode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}
