//! Reference rules for the audit checks: conversion-ratio bands per process
//! (DESIGN §5, domain.md §1.6) and Fairtrade Minimum Prices and Premiums keyed
//! by contract date (domain.md §0 item 6, §1.2).
//!
//! lotline ships defaults with a source for every figure; a site or an org
//! overrides them with a TOML rules file (`Rules::from_toml`), and
//! `Rules::defaults_toml` prints the defaults as a file to start from.
//!
//! Figures are exact decimals. In a rules file write them as quoted strings
//! (`min = "0.35"`), as `defaults_toml` does; plain TOML numbers are accepted
//! too and read by their shortest decimal spelling (`0.35` is 0.35).

use std::fmt;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::anomaly::{Anomaly, AnomalyKind};
use crate::event::{Chain, Event, EventKind, Transform};
use crate::lineage::observed_yield;

/// The reference rules the audit checks use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    /// Conversion-ratio bands (yield = output / input).
    #[serde(default)]
    pub bands: Vec<Band>,
    /// Fairtrade Minimum Price and Premium, keyed by product class and contract date.
    #[serde(default)]
    pub prices: Vec<PriceRule>,
}

/// The accepted yield (total counted output / total input, in base units) of
/// one process in one chain, possibly for one org or site only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Band {
    /// "cocoa", "coffee" or "textile" (also "cotton"); compared with [`Chain::as_str`].
    pub chain: String,
    /// The transform's process, matched after normalising both sides: lowercase,
    /// trimmed, '-' and ' ' read as '_' ("Wet milling" is `wet_milling`).
    pub process: String,
    /// When set, the band applies only if some input lot's product contains it
    /// (case-insensitive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_product: Option<String>,
    /// When set, only outputs whose product contains it (case-insensitive) count
    /// in the yield, and the band applies only if some output matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_product: Option<String>,
    /// When set, the band applies only to transforms recorded by this org.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    /// When set, the band applies only to transforms at this site.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    /// Lowest accepted yield, inclusive.
    pub min: Decimal,
    /// Highest accepted yield, inclusive.
    pub max: Decimal,
    /// Where the figure comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// One version of the Fairtrade Minimum Price and Premium for a product class.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceRule {
    /// The product class, e.g. "cocoa", "coffee_washed_arabica".
    pub class: String,
    /// "cocoa", "coffee" or "textile".
    pub chain: String,
    /// Case-insensitive substrings of a lot's product that select this class;
    /// empty selects any product of the chain. See [`Rules::price_for`] for
    /// which class wins when several select a product.
    #[serde(default)]
    pub products: Vec<String>,
    /// Case-insensitive substrings of a lot's product that keep this class from
    /// selecting it (another form of the commodity, priced otherwise).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excludes: Vec<String>,
    /// The rule covers contracts signed on or after this date.
    #[serde(with = "date_text")]
    pub effective_from: NaiveDate,
    /// ISO 4217 code, e.g. "USD".
    pub currency: String,
    /// The unit prices are quoted per, e.g. "t" or "lb" (read with `Unit::parse`).
    pub unit: String,
    /// Fairtrade Minimum Price per unit, excluding the premium.
    pub minimum: Decimal,
    /// Fairtrade Premium per unit.
    pub premium: Decimal,
    /// Added to the minimum when the lot also claims organic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organic_differential: Option<Decimal>,
    /// Where the figures come from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// Why a rules file was not accepted: the line or entry and the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RulesError(pub String);

/// A rules file: the rules plus whether they replace the defaults.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    #[serde(default)]
    replace_defaults: bool,
    #[serde(default)]
    bands: Vec<Band>,
    #[serde(default)]
    prices: Vec<PriceRule>,
}

/// Normalises a process name: lowercase, trimmed, '-' and ' ' read as '_'.
pub fn normalise_process(process: &str) -> String {
    process
        .trim()
        .to_lowercase()
        .chars()
        .map(|c| if c == '-' || c == ' ' { '_' } else { c })
        .collect()
}

/// A filter string that is set and not blank.
fn set(filter: &Option<String>) -> Option<&str> {
    filter.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// Whether `text` contains `part`, ignoring case.
fn contains_ci(text: &str, part: &str) -> bool {
    text.to_lowercase().contains(&part.trim().to_lowercase())
}

/// Whether a rule's chain name names `chain` ("cotton" names textile).
fn chain_is(name: &str, chain: Chain) -> bool {
    Chain::parse(name) == Some(chain)
}

impl Band {
    fn new(chain: Chain, process: &str, min: Decimal, max: Decimal, source: &str) -> Band {
        Band {
            chain: chain.as_str().to_string(),
            process: process.to_string(),
            input_product: None,
            output_product: None,
            org: None,
            site: None,
            min,
            max,
            source: Some(source.to_string()),
        }
    }

    fn input(mut self, product: &str) -> Band {
        self.input_product = Some(product.to_string());
        self
    }

    fn output(mut self, product: &str) -> Band {
        self.output_product = Some(product.to_string());
        self
    }

    /// Whether this output counts in the yield.
    pub fn counts(&self, output_product: &str) -> bool {
        set(&self.output_product).is_none_or(|p| contains_ci(output_product, p))
    }

    /// Whether the band applies to `t` recorded by `event` in `chain`.
    fn applies(
        &self,
        chain: Chain,
        process: &str,
        event: &Event,
        t: &Transform,
        input_products: &[Option<String>],
    ) -> bool {
        chain_is(&self.chain, chain)
            && normalise_process(&self.process) == process
            && set(&self.org).is_none_or(|org| event.org.trim() == org)
            && set(&self.site).is_none_or(|site| event.site.as_deref().map(str::trim) == Some(site))
            && set(&self.input_product).is_none_or(|p| {
                input_products
                    .iter()
                    .flatten()
                    .any(|product| contains_ci(product, p))
            })
            && set(&self.output_product)
                .is_none_or(|p| t.outputs.iter().any(|o| contains_ci(&o.product, p)))
    }

    /// Most specific first: per-site, then per-org, then general; within each,
    /// bands with a product filter before bands without.
    fn specificity(&self) -> (u8, bool) {
        let tier = if set(&self.site).is_some() {
            0
        } else if set(&self.org).is_some() {
            1
        } else {
            2
        };
        let unfiltered = set(&self.input_product).is_none() && set(&self.output_product).is_none();
        (tier, unfiltered)
    }

    /// "cocoa drying", "cocoa drying at site S", "coffee hulling for org O".
    fn describe(&self) -> String {
        let mut text = format!("{} {}", self.chain, self.process);
        if let Some(p) = set(&self.input_product) {
            text.push_str(&format!(" of {p}"));
        }
        if let Some(p) = set(&self.output_product) {
            text.push_str(&format!(" into {p}"));
        }
        if let Some(site) = set(&self.site) {
            text.push_str(&format!(" at site {site}"));
        }
        if let Some(org) = set(&self.org) {
            text.push_str(&format!(" for org {org}"));
        }
        text
    }
}

impl PriceRule {
    /// How specifically this rule selects `product` (lowercased): `Some(0)` for a
    /// rule with no product list, `Some(len + 1)` for the longest listed string
    /// the product contains, `None` when the rule does not select it.
    fn selects(&self, product: &str) -> Option<usize> {
        if self
            .excludes
            .iter()
            .map(|x| x.trim().to_lowercase())
            .any(|x| !x.is_empty() && product.contains(x.as_str()))
        {
            return None;
        }
        let listed: Vec<String> = self
            .products
            .iter()
            .map(|p| p.trim().to_lowercase())
            .filter(|p| !p.is_empty())
            .collect();
        if listed.is_empty() {
            return Some(0);
        }
        listed
            .iter()
            .filter(|p| product.contains(p.as_str()))
            .map(|p| p.chars().count() + 1)
            .max()
    }

    /// The class as words: "coffee_washed_arabica" in the coffee chain is
    /// "washed arabica"; "cocoa" stays "cocoa".
    pub fn class_words(&self) -> String {
        let chain = self.chain.trim().to_lowercase();
        let class = self.class.trim();
        let rest = class
            .strip_prefix(&format!("{chain}_"))
            .filter(|r| !r.is_empty())
            .unwrap_or(class);
        rest.replace('_', " ")
    }
}

impl Default for Rules {
    /// The reference rules, each with its source.
    fn default() -> Self {
        Rules {
            bands: default_bands(),
            prices: default_prices(),
        }
    }
}

/// `d(35, 2)` is 0.35.
const fn d(num: u32, scale: u32) -> Decimal {
    Decimal::from_parts(num, 0, 0, false, scale)
}

const fn date(year: i32, month: u32, day: u32) -> NaiveDate {
    match NaiveDate::from_ymd_opt(year, month, day) {
        Some(date) => date,
        None => panic!("invalid constant date"),
    }
}

const COCOA_DRY: &str = "cocoa commercial dry beans are 35-40 % of wet weight \
     (Knapp, Cocoa and Chocolate)";
const COCOA_FERMENT: &str = "cocoa wet beans lose 20-25 % of their weight in fermenting (Knapp)";
const COCOA_DRY_FERMENTED: &str = "fermented cocoa loses a further 40 % in drying (Knapp)";
const COFFEE_PARCHMENT: &str = "coffee fresh cherry to parchment (washed) is about 0.20 \
     (Wikiversity Coffee Farming cheatsheet)";
const COFFEE_GREEN: &str = "coffee parchment to green is 0.80 (ICO standard factor; \
     Kenya coffee school, Wikiversity cheatsheet)";
const COFFEE_DRY_CHERRY_GREEN: &str =
    "coffee dry cherry to green is 0.50 (ICO; Wikiversity cheatsheet)";
const COFFEE_DRYING: &str = "coffee fresh cherry to dry cherry (natural) is about 0.33 \
     (Wikiversity cheatsheet)";
const COFFEE_ROAST: &str = "coffee green to roasted is 0.84 (ICO; Wikiversity cheatsheet)";
const COTTON_GIN: &str = "seed cotton gives about 35 % lint (textilesindepth.com, \
     stapp.co); lint turnout varies by variety and region (cottoninfo.com.au)";
const COTTON_SPIN: &str =
    "lint to carded yarn about 85-90 % (unverified: no source yet; combed is lower)";
const MASS_CONSERVED: &str = "mass is conserved: aggregating, splitting, merging or bagging cannot give \
     more out than in, and loses little (DESIGN §2)";

fn default_bands() -> Vec<Band> {
    use Chain::{Cocoa, Coffee, Textile};
    let mut bands = vec![
        Band::new(Cocoa, "fermenting_drying", d(35, 2), d(40, 2), COCOA_DRY),
        Band::new(Cocoa, "drying", d(55, 2), d(65, 2), COCOA_DRY_FERMENTED).input("fermented"),
        Band::new(Cocoa, "drying", d(35, 2), d(40, 2), COCOA_DRY),
        Band::new(Cocoa, "fermenting", d(75, 2), d(80, 2), COCOA_FERMENT),
        Band::new(Coffee, "pulping", d(17, 2), d(23, 2), COFFEE_PARCHMENT),
        Band::new(Coffee, "wet_milling", d(17, 2), d(23, 2), COFFEE_PARCHMENT),
        Band::new(
            Coffee,
            "dry_milling",
            d(45, 2),
            d(55, 2),
            COFFEE_DRY_CHERRY_GREEN,
        )
        .input("cherry"),
        Band::new(
            Coffee,
            "hulling",
            d(45, 2),
            d(55, 2),
            COFFEE_DRY_CHERRY_GREEN,
        )
        .input("cherry"),
        Band::new(Coffee, "hulling", d(75, 2), d(85, 2), COFFEE_GREEN),
        Band::new(Coffee, "dry_milling", d(75, 2), d(85, 2), COFFEE_GREEN),
        Band::new(Coffee, "drying", d(30, 2), d(36, 2), COFFEE_DRYING).input("cherry"),
        Band::new(Coffee, "roasting", d(80, 2), d(88, 2), COFFEE_ROAST),
        Band::new(Textile, "ginning", d(30, 2), d(42, 2), COTTON_GIN).output("lint"),
        Band::new(Textile, "spinning", d(80, 2), d(92, 2), COTTON_SPIN),
    ];
    for chain in Chain::ALL {
        for process in ["aggregation", "split", "merge", "bagging"] {
            bands.push(Band::new(
                chain,
                process,
                d(98, 2),
                d(100, 2),
                MASS_CONSERVED,
            ));
        }
    }
    bands
}

const COCOA_PRICE: &str = "cocoa FMP US$2,400/t FOB, Premium US$240/t, \
     from 1 Oct 2019 (fairtradehk.org fair_pay; candyusa.com); organic cocoa is market + US$300 or \
     the FMP, whichever is higher, so only the FMP is checked";
const COFFEE_PRICE: &str = "coffee contracts signed on or after \
     1 Aug 2023 (fairtradeanz.org new Fairtrade Minimum Price for coffee Q&A; hacofco.de FTMP)";

fn coffee(class: &str, products: &[&str], minimum: Decimal) -> PriceRule {
    PriceRule {
        class: class.to_string(),
        chain: Chain::Coffee.as_str().to_string(),
        products: products.iter().map(|p| p.to_string()).collect(),
        excludes: COFFEE_NOT_GREEN.iter().map(|p| p.to_string()).collect(),
        effective_from: date(2023, 8, 1),
        currency: "USD".to_string(),
        unit: "lb".to_string(),
        minimum,
        premium: d(20, 2),
        organic_differential: Some(d(40, 2)),
        source: Some(COFFEE_PRICE.to_string()),
    }
}

/// The coffee minimum prices are for green coffee (FOB): earlier and later forms
/// (cherry paid to farmers, parchment, roasted) are priced otherwise.
const COFFEE_NOT_GREEN: [&str; 6] = [
    "cherry",
    "parchment",
    "pergamino",
    "roasted",
    "ground",
    "instant",
];

/// The cocoa minimum price is for dry cocoa beans (FOB): wet beans paid to
/// farmers and processed products are priced otherwise.
const COCOA_NOT_BEANS: [&str; 8] = [
    "wet",
    "liquor",
    "mass",
    "butter",
    "powder",
    "nib",
    "chocolate",
    "bar",
];

fn default_prices() -> Vec<PriceRule> {
    vec![
        PriceRule {
            class: "cocoa".to_string(),
            chain: Chain::Cocoa.as_str().to_string(),
            products: Vec::new(),
            excludes: COCOA_NOT_BEANS.iter().map(|p| p.to_string()).collect(),
            effective_from: date(2019, 10, 1),
            currency: "USD".to_string(),
            unit: "t".to_string(),
            minimum: d(2400, 0),
            premium: d(240, 0),
            organic_differential: None,
            source: Some(COCOA_PRICE.to_string()),
        },
        coffee("coffee_washed_arabica", &["arabica"], d(180, 2)),
        coffee(
            "coffee_natural_arabica",
            &["natural arabica", "unwashed arabica"],
            d(175, 2),
        ),
        coffee("coffee_washed_robusta", &["washed robusta"], d(125, 2)),
        coffee(
            "coffee_natural_robusta",
            &["robusta", "natural robusta", "unwashed robusta"],
            d(120, 2),
        ),
        // An unnamed coffee product is held to the washed Arabica price.
        coffee("coffee", &[], d(180, 2)),
    ]
}

const DEFAULTS_HEADER: &str = "\
# lotline reference rules (the built-in defaults).
#
# Copy this file, edit it, and load it as the rules file. With
# `replace_defaults = true` it replaces the built-in rules entirely; without it
# (or with false) its bands are tried before the built-in ones and its prices
# are added to them.
#
# Figures are quoted so they stay exact decimals; dates are YYYY-MM-DD.
#
# [[bands]]: the accepted yield (output / input, inclusive) of a process.
#   process is matched case-insensitively with '-' and ' ' read as '_'.
#   input_product: applies only if an input lot's product contains this.
#   output_product: only outputs whose product contains this count.
#   org / site: a per-org or per-site band; most specific wins (site, org,
#   general; product-filtered before unfiltered; then file order).
#
# [[prices]]: Fairtrade Minimum Price (excluding premium) and Premium per unit,
#   for contracts signed on or after effective_from. products selects the class
#   by substring of the lot's product; the longest matching string wins, an
#   empty list matches any product of the chain and loses to any match.
#   organic_differential is added to the minimum for lots that also claim organic.

";

impl Rules {
    /// Parses a rules file and merges it over the defaults: its bands come
    /// first (so they win over defaults of the same specificity) and its prices
    /// are added (before the defaults, so they win ties). `replace_defaults =
    /// true` at the top drops the default bands and prices. Errors name the
    /// line and field (toml's error) or the entry that breaks a rule.
    pub fn from_toml(text: &str) -> Result<Rules, RulesError> {
        let file: RulesFile =
            toml::from_str(text).map_err(|e| RulesError(format!("invalid rules file: {e}")))?;
        let mut bands = Vec::with_capacity(file.bands.len());
        for (i, band) in file.bands.into_iter().enumerate() {
            let band =
                check_band(band).map_err(|e| RulesError(entry_error(text, "bands", i, &e)))?;
            bands.push(band);
        }
        let mut prices = Vec::with_capacity(file.prices.len());
        for (i, price) in file.prices.into_iter().enumerate() {
            let price =
                check_price(price).map_err(|e| RulesError(entry_error(text, "prices", i, &e)))?;
            prices.push(price);
        }
        if !file.replace_defaults {
            let defaults = Rules::default();
            bands.extend(defaults.bands);
            prices.extend(defaults.prices);
        }
        Ok(Rules { bands, prices })
    }

    /// The defaults as a TOML document a user can copy and edit. It sets
    /// `replace_defaults = true`, so `from_toml` reads it back as exactly the
    /// defaults.
    pub fn defaults_toml() -> String {
        let defaults = Rules::default();
        let file = RulesFile {
            replace_defaults: true,
            bands: defaults.bands,
            prices: defaults.prices,
        };
        match toml::to_string(&file) {
            Ok(body) => format!("{DEFAULTS_HEADER}{body}"),
            // Serialising plain strings, decimals and dates cannot fail; say so
            // in the document rather than panicking if it ever does.
            Err(e) => format!("{DEFAULTS_HEADER}# could not write the defaults: {e}\n"),
        }
    }

    /// The band that applies to `t`, recorded by `event` (event.org,
    /// event.site, event.chain), given the products of its input lots
    /// (`input_products[i]` is the product of `t.inputs[i].lot` when known).
    /// Most specific first: site match, then org match, then general; within
    /// each, bands with input_product/output_product filters before bands
    /// without; first match in file order wins. `None` when the event has no
    /// chain or no band matches.
    pub fn band_for(
        &self,
        event: &Event,
        t: &Transform,
        input_products: &[Option<String>],
    ) -> Option<&Band> {
        let chain = event.chain?;
        let process = normalise_process(&t.process);
        self.bands
            .iter()
            .enumerate()
            .filter(|(_, b)| b.applies(chain, &process, event, t, input_products))
            .min_by_key(|(i, b)| (b.specificity(), *i))
            .map(|(_, b)| b)
    }

    /// The price rule for a lot of `product` in `chain` under a contract
    /// signed on `date`.
    ///
    /// Among rules of the chain that are in force (effective_from <= date)
    /// and select the product, the most specific selection wins: a rule whose
    /// matching product string is longer beats one whose match is shorter
    /// ("washed robusta" beats "robusta"), and any match beats a rule with an
    /// empty product list. Among equally specific rules the latest
    /// effective_from wins, then the first in order (a rules file's prices come
    /// before the defaults).
    pub fn price_for(&self, chain: &str, product: &str, date: NaiveDate) -> Option<&PriceRule> {
        let chain = Chain::parse(chain)?;
        let product = product.trim().to_lowercase();
        self.prices
            .iter()
            .enumerate()
            .filter(|(_, r)| chain_is(&r.chain, chain) && r.effective_from <= date)
            .filter_map(|(i, r)| r.selects(&product).map(|s| (s, r.effective_from, i, r)))
            .max_by(|a, b| {
                (a.0, a.1)
                    .cmp(&(b.0, b.1))
                    // Earlier in the list wins a full tie.
                    .then_with(|| b.2.cmp(&a.2))
            })
            .map(|(_, _, _, r)| r)
    }
}

/// Checks one band from a file and writes its chain canonically.
fn check_band(mut band: Band) -> Result<Band, String> {
    let chain = Chain::parse(&band.chain).ok_or_else(|| {
        format!(
            "chain \"{}\" is not one of cocoa, coffee, textile",
            band.chain
        )
    })?;
    band.chain = chain.as_str().to_string();
    if band.process.trim().is_empty() {
        return Err("process is empty".to_string());
    }
    if band.min < Decimal::ZERO {
        return Err(format!("min {} is negative", band.min));
    }
    if band.min > band.max {
        return Err(format!("min {} is above max {}", band.min, band.max));
    }
    Ok(band)
}

/// Checks one price rule from a file and writes its chain canonically.
fn check_price(mut price: PriceRule) -> Result<PriceRule, String> {
    let chain = Chain::parse(&price.chain).ok_or_else(|| {
        format!(
            "chain \"{}\" is not one of cocoa, coffee, textile",
            price.chain
        )
    })?;
    price.chain = chain.as_str().to_string();
    if price.class.trim().is_empty() {
        return Err("class is empty".to_string());
    }
    if price.currency.trim().is_empty() {
        return Err("currency is empty".to_string());
    }
    if crate::quantity::Unit::parse(&price.unit).is_none() {
        return Err("unit is empty".to_string());
    }
    for (name, value) in [
        ("minimum", Some(price.minimum)),
        ("premium", Some(price.premium)),
        ("organic_differential", price.organic_differential),
    ] {
        if let Some(value) = value.filter(|v| *v < Decimal::ZERO) {
            return Err(format!("{name} {value} is negative"));
        }
    }
    Ok(price)
}

/// "line 12: [[bands]] entry 3: min 0.50 is above max 0.40".
fn entry_error(text: &str, table: &str, index: usize, problem: &str) -> String {
    let header = format!("[[{table}]]");
    let line = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.trim_start().starts_with(&header))
        .nth(index)
        .map(|(n, _)| format!("line {}: ", n + 1))
        .unwrap_or_default();
    format!(
        "invalid rules file: {line}{header} entry {}: {problem}",
        index + 1
    )
}

/// Flags a transform whose yield is outside its band
/// ([`AnomalyKind::YieldOutOfBand`]), with figures chain, process, band_min,
/// band_max, observed_yield (4 dp) and band_source. Exactly at a band edge is
/// inside. No band, or inputs and outputs that do not convert, give nothing.
/// The anomaly's lot is the first counted output's lot; its org is the event's.
pub fn yield_check(
    rules: &Rules,
    event: &Event,
    input_products: &[Option<String>],
) -> Option<Anomaly> {
    let EventKind::Transform(t) = &event.kind else {
        return None;
    };
    let band = rules.band_for(event, t, input_products)?;
    let observed = observed_yield(t, |o| band.counts(&o.product))?;
    if observed >= band.min && observed <= band.max {
        return None;
    }
    let lot = t
        .outputs
        .iter()
        .find(|o| band.counts(&o.product))
        .map(|o| o.lot.as_str())
        .unwrap_or_default();
    let shown = observed.round_dp(4).normalize();
    let side = if observed > band.max {
        "above"
    } else {
        "below"
    };
    let counted = set(&band.output_product)
        .map(|p| format!(" (counting only {p} outputs)"))
        .unwrap_or_default();
    let explanation = format!(
        "{} yielded {shown} of its input{counted}; the band for {} is {}–{}, so the yield is {side} it",
        t.process.trim(),
        band.describe(),
        band.min,
        band.max,
    );
    let mut anomaly = Anomaly::new(
        AnomalyKind::YieldOutOfBand,
        lot,
        Some(&event.id),
        explanation,
    )
    .org(&event.org)
    .figure("chain", &band.chain)
    .figure("process", t.process.trim())
    .figure("band_min", band.min)
    .figure("band_max", band.max)
    .figure("observed_yield", shown);
    if let Some(source) = &band.source {
        anomaly = anomaly.figure("band_source", source);
    }
    Some(anomaly)
}

/// Dates as "YYYY-MM-DD" strings; reading also accepts TOML date literals.
mod date_text {
    use super::*;
    use serde::de::{self, MapAccess, Visitor};

    pub fn serialize<S: serde::Serializer>(date: &NaiveDate, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&date.format("%Y-%m-%d"))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<NaiveDate, D::Error> {
        d.deserialize_any(DateVisitor)
    }

    struct DateVisitor;

    fn parse<E: de::Error>(text: &str) -> Result<NaiveDate, E> {
        NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
            .map_err(|_| E::custom(format!("\"{text}\" is not a date (YYYY-MM-DD)")))
    }

    impl<'de> Visitor<'de> for DateVisitor {
        type Value = NaiveDate;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a date, YYYY-MM-DD")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<NaiveDate, E> {
            parse(v)
        }

        /// toml hands a date literal over as a one-entry map holding its text.
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NaiveDate, A::Error> {
            match map.next_entry::<String, String>()? {
                Some((_, text)) => parse(&text),
                None => Err(de::Error::custom("expected a date (YYYY-MM-DD)")),
            }
        }
    }
}

impl fmt::Display for Band {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}–{}", self.describe(), self.min, self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{LotQuantity, OutputLot};
    use crate::quantity::{Quantity, Unit};
    use chrono::DateTime;
    use std::collections::BTreeMap;
    use std::str::FromStr;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn kg(s: &str) -> Quantity {
        Quantity::new(dec(s), Unit::Kilogram)
    }

    fn transform(
        chain: Chain,
        process: &str,
        site: Option<&str>,
        inputs: &[Quantity],
        outputs: &[(&str, Quantity)],
    ) -> Event {
        Event {
            id: "ev-t".into(),
            time: DateTime::parse_from_rfc3339("2026-03-02T10:00:00+00:00").unwrap(),
            org: "coop-1".into(),
            chain: Some(chain),
            site: site.map(str::to_string),
            extensions: BTreeMap::new(),
            kind: EventKind::Transform(Transform {
                inputs: inputs
                    .iter()
                    .enumerate()
                    .map(|(i, q)| LotQuantity {
                        lot: format!("IN{i}"),
                        quantity: q.clone(),
                    })
                    .collect(),
                outputs: outputs
                    .iter()
                    .enumerate()
                    .map(|(i, (product, q))| OutputLot {
                        lot: format!("OUT{i}"),
                        product: product.to_string(),
                        quantity: q.clone(),
                        custody: None,
                        claims: Vec::new(),
                    })
                    .collect(),
                process: process.into(),
                conversion_ratio: None,
            }),
        }
    }

    fn cocoa_drying(out: &str) -> Event {
        transform(
            Chain::Cocoa,
            "Drying",
            None,
            &[kg("1000")],
            &[("dry cocoa beans", kg(out))],
        )
    }

    #[test]
    fn yield_at_band_edges_is_inside() {
        let rules = Rules::default();
        assert_eq!(yield_check(&rules, &cocoa_drying("350"), &[]), None);
        assert_eq!(yield_check(&rules, &cocoa_drying("400"), &[]), None);
    }

    #[test]
    fn yield_just_outside_is_flagged_with_figures() {
        let rules = Rules::default();
        let above = yield_check(&rules, &cocoa_drying("400.1"), &[]).unwrap();
        assert_eq!(above.kind, AnomalyKind::YieldOutOfBand);
        assert_eq!(above.lot, "OUT0");
        assert_eq!(above.event_id.as_deref(), Some("ev-t"));
        assert_eq!(above.org.as_deref(), Some("coop-1"));
        assert_eq!(above.figures["process"], "Drying");
        assert_eq!(above.figures["band_min"], "0.35");
        assert_eq!(above.figures["band_max"], "0.40");
        assert_eq!(above.figures["observed_yield"], "0.4001");
        assert!(above.figures["band_source"].contains("Knapp"));
        assert!(
            above.explanation.contains(
                "Drying yielded 0.4001 of its input; the band for cocoa drying is 0.35–0.40"
            ),
            "{}",
            above.explanation
        );
        let below = yield_check(&rules, &cocoa_drying("349.9"), &[]).unwrap();
        assert_eq!(below.figures["observed_yield"], "0.3499");
        assert!(below.explanation.contains("below"));
    }

    #[test]
    fn yield_rounds_to_four_places_and_mixed_mass_units_convert() {
        let rules = Rules::default();
        let e = transform(
            Chain::Cocoa,
            "drying",
            None,
            &[Quantity::new(dec("3"), Unit::Tonne)],
            &[("dry beans", kg("1000"))],
        );
        let a = yield_check(&rules, &e, &[]).unwrap();
        assert_eq!(a.figures["observed_yield"], "0.3333");
    }

    #[test]
    fn no_band_or_incomparable_units_gives_nothing() {
        let rules = Rules::default();
        let unknown = transform(
            Chain::Cocoa,
            "grinding",
            None,
            &[kg("10")],
            &[("x", kg("1"))],
        );
        assert_eq!(yield_check(&rules, &unknown, &[]), None);
        let pieces = transform(
            Chain::Cocoa,
            "drying",
            None,
            &[kg("100")],
            &[("bags", Quantity::new(dec("3"), Unit::Piece))],
        );
        assert_eq!(yield_check(&rules, &pieces, &[]), None);
        let mut no_chain = cocoa_drying("900");
        no_chain.chain = None;
        assert_eq!(yield_check(&rules, &no_chain, &[]), None);
    }

    #[test]
    fn input_product_selects_the_fermented_drying_band() {
        let rules = Rules::default();
        let e = cocoa_drying("600");
        let fermented = [Some("Fermented cocoa beans".to_string())];
        assert_eq!(yield_check(&rules, &e, &fermented), None);
        let band = match &e.kind {
            EventKind::Transform(t) => rules.band_for(&e, t, &fermented).unwrap(),
            _ => unreachable!(),
        };
        assert_eq!(band.min, dec("0.55"));
        // Wet beans: the general drying band, and 0.60 is far above it.
        let wet = [Some("wet cocoa beans".to_string())];
        let a = yield_check(&rules, &e, &wet).unwrap();
        assert_eq!(a.figures["band_max"], "0.40");
        // Unknown input products fall back to the general band too.
        assert!(yield_check(&rules, &e, &[None]).is_some());
    }

    #[test]
    fn per_site_band_overrides_the_default() {
        let text = r#"
[[bands]]
chain = "cocoa"
process = "drying"
site = "site-7"
min = "0.40"
max = "0.50"
source = "site-7 measured 2025 season"
"#;
        let rules = Rules::from_toml(text).unwrap();
        let mut e = transform(
            Chain::Cocoa,
            "drying",
            Some("site-7"),
            &[kg("1000")],
            &[("dry beans", kg("450"))],
        );
        assert_eq!(yield_check(&rules, &e, &[]), None);
        // The site band wins even over the input-filtered default, which would
        // accept 0.60.
        let fermented = [Some("fermented beans".to_string())];
        let mut e60 = e.clone();
        if let EventKind::Transform(t) = &mut e60.kind {
            t.outputs[0].quantity = kg("600");
        }
        let a = yield_check(&rules, &e60, &fermented).unwrap();
        assert_eq!(a.figures["band_min"], "0.40");
        assert!(
            a.explanation.contains("at site site-7"),
            "{}",
            a.explanation
        );
        // Another site keeps the default band.
        e.site = Some("site-8".into());
        let a = yield_check(&rules, &e, &[]).unwrap();
        assert_eq!(a.figures["band_max"], "0.40");
    }

    #[test]
    fn per_org_band_beats_general_and_site_beats_org() {
        let text = r#"
[[bands]]
chain = "coffee"
process = "hulling"
org = "coop-1"
min = "0.70"
max = "0.90"

[[bands]]
chain = "coffee"
process = "hulling"
org = "coop-1"
site = "mill-2"
min = "0.60"
max = "0.65"
"#;
        let rules = Rules::from_toml(text).unwrap();
        let mut e = transform(
            Chain::Coffee,
            "hulling",
            None,
            &[kg("100")],
            &[("green coffee", kg("88"))],
        );
        assert_eq!(yield_check(&rules, &e, &[]), None);
        e.site = Some("mill-2".into());
        let a = yield_check(&rules, &e, &[]).unwrap();
        assert_eq!(a.figures["band_max"], "0.65");
        e.org = "coop-2".into();
        e.site = None;
        let a = yield_check(&rules, &e, &[]).unwrap();
        assert_eq!(a.figures["band_max"], "0.85");
    }

    #[test]
    fn ginning_counts_only_the_lint_output() {
        let rules = Rules::default();
        let e = transform(
            Chain::Textile,
            "ginning",
            None,
            &[kg("1000")],
            &[
                ("cottonseed", kg("550")),
                ("lint bales", kg("350")),
                ("gin trash", kg("100")),
            ],
        );
        assert_eq!(yield_check(&rules, &e, &[]), None);
        let e = transform(
            Chain::Textile,
            "ginning",
            None,
            &[kg("1000")],
            &[("cottonseed", kg("500")), ("Lint", kg("450"))],
        );
        let a = yield_check(&rules, &e, &[]).unwrap();
        assert_eq!(a.lot, "OUT1");
        assert_eq!(a.figures["observed_yield"], "0.45");
        // Without a lint output the band does not apply.
        let e = transform(
            Chain::Textile,
            "ginning",
            None,
            &[kg("1000")],
            &[("cottonseed", kg("900"))],
        );
        assert_eq!(yield_check(&rules, &e, &[]), None);
    }

    #[test]
    fn mass_conserving_steps_flag_over_conversion() {
        let rules = Rules::default();
        let ok = transform(
            Chain::Coffee,
            "Aggregation",
            None,
            &[kg("60"), kg("40")],
            &[("parchment", kg("100"))],
        );
        assert_eq!(yield_check(&rules, &ok, &[]), None);
        let over = transform(
            Chain::Coffee,
            "aggregation",
            None,
            &[kg("60"), kg("40")],
            &[("parchment", kg("100.5"))],
        );
        assert!(yield_check(&rules, &over, &[]).is_some());
    }

    #[test]
    fn process_names_are_normalised() {
        let rules = Rules::default();
        let e = transform(
            Chain::Coffee,
            "Wet-Milling",
            None,
            &[kg("500")],
            &[("parchment", kg("100"))],
        );
        assert_eq!(yield_check(&rules, &e, &[]), None);
        let e = transform(
            Chain::Coffee,
            "wet milling",
            None,
            &[kg("500")],
            &[("parchment", kg("150"))],
        );
        assert!(yield_check(&rules, &e, &[]).is_some());
    }

    #[test]
    fn from_toml_merges_over_the_defaults() {
        let text = r#"
[[bands]]
chain = "cocoa"
process = "drying"
min = 0.3
max = "0.45"

[[prices]]
class = "cocoa"
chain = "cocoa"
effective_from = 2025-10-01
currency = "USD"
unit = "t"
minimum = "2600"
premium = "240"
"#;
        let rules = Rules::from_toml(text).unwrap();
        let defaults = Rules::default();
        assert_eq!(rules.bands.len(), defaults.bands.len() + 1);
        assert_eq!(rules.bands[0].min, dec("0.3"));
        assert_eq!(rules.prices.len(), defaults.prices.len() + 1);
        // The file's general band comes before the default general band.
        let e = cocoa_drying("420");
        assert_eq!(yield_check(&rules, &e, &[]), None);
        // The new price applies from its date; the default before it.
        let d2026 = date(2026, 1, 5);
        let d2024 = date(2024, 1, 5);
        assert_eq!(
            rules
                .price_for("cocoa", "dry beans", d2026)
                .unwrap()
                .minimum,
            dec("2600")
        );
        assert_eq!(
            rules
                .price_for("cocoa", "dry beans", d2024)
                .unwrap()
                .minimum,
            dec("2400")
        );
    }

    #[test]
    fn replace_defaults_drops_the_defaults() {
        let text = r#"
replace_defaults = true

[[bands]]
chain = "Cotton"
process = "weaving"
min = "0.9"
max = "0.97"
"#;
        let rules = Rules::from_toml(text).unwrap();
        assert_eq!(rules.bands.len(), 1);
        assert_eq!(rules.bands[0].chain, "textile");
        assert!(rules.prices.is_empty());
        assert_eq!(
            Rules::from_toml("replace_defaults = true").unwrap(),
            Rules {
                bands: Vec::new(),
                prices: Vec::new()
            }
        );
        assert_eq!(Rules::from_toml("").unwrap(), Rules::default());
    }

    #[test]
    fn defaults_toml_round_trips() {
        let text = Rules::defaults_toml();
        assert!(text.starts_with("# lotline reference rules"));
        assert!(text.contains("replace_defaults = true"));
        assert_eq!(Rules::from_toml(&text).unwrap(), Rules::default());
    }

    #[test]
    fn bad_files_name_the_problem() {
        let err =
            Rules::from_toml("[[bands]]\nchain = \"cocoa\"\nprocess = \"drying\"\nmin = \"0.3\"\n")
                .unwrap_err()
                .to_string();
        assert!(err.contains("max"), "{err}");
        let err = Rules::from_toml(
            "[[bands]]\nchain = \"cocoa\"\nprocess = \"drying\"\nmim = \"0.3\"\nmax = \"1\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("mim") && err.contains("line 4"), "{err}");
        let err = Rules::from_toml(
            "[[bands]]\nchain = \"cocoa\"\nprocess = \"drying\"\nmin = \"abc\"\nmax = \"1\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("line 4"), "{err}");
        let err = Rules::from_toml("[[bands]\n").unwrap_err().to_string();
        assert!(err.contains("line 1"), "{err}");
        let text = "\n[[bands]]\nchain = \"cocoa\"\nprocess = \"x\"\nmin = \"0\"\nmax = \"1\"\n\n[[bands]]\nchain = \"cocoa\"\nprocess = \"drying\"\nmin = \"0.5\"\nmax = \"0.4\"\n";
        let err = Rules::from_toml(text).unwrap_err().to_string();
        assert!(
            err.contains("line 8: [[bands]] entry 2: min 0.5 is above max 0.4"),
            "{err}"
        );
        let err = Rules::from_toml(
            "[[prices]]\nclass = \"tea\"\nchain = \"tea\"\neffective_from = \"2024-01-01\"\ncurrency = \"USD\"\nunit = \"kg\"\nminimum = \"1\"\npremium = \"0.1\"\n",
        )
        .unwrap_err().to_string();
        assert!(err.contains("chain \"tea\""), "{err}");
        let err = Rules::from_toml(
            "[[prices]]\nclass = \"c\"\nchain = \"cocoa\"\neffective_from = \"2024-13-01\"\ncurrency = \"USD\"\nunit = \"kg\"\nminimum = \"1\"\npremium = \"0.1\"\n",
        )
        .unwrap_err().to_string();
        assert!(
            err.contains("2024-13-01") && err.contains("line 4"),
            "{err}"
        );
    }

    #[test]
    fn price_for_picks_the_most_specific_product_match() {
        let rules = Rules::default();
        let day = date(2024, 2, 1);
        let class = |product: &str| {
            rules
                .price_for("coffee", product, day)
                .map(|r| r.class.clone())
        };
        assert_eq!(
            class("Washed Arabica green").as_deref(),
            Some("coffee_washed_arabica")
        );
        assert_eq!(
            class("natural arabica").as_deref(),
            Some("coffee_natural_arabica")
        );
        assert_eq!(
            class("unwashed arabica").as_deref(),
            Some("coffee_natural_arabica")
        );
        assert_eq!(
            class("washed robusta").as_deref(),
            Some("coffee_washed_robusta")
        );
        assert_eq!(
            class("unwashed robusta").as_deref(),
            Some("coffee_natural_robusta")
        );
        assert_eq!(class("robusta").as_deref(), Some("coffee_natural_robusta"));
        assert_eq!(class("green coffee").as_deref(), Some("coffee"));
        assert_eq!(
            rules
                .price_for("coffee", "green coffee", day)
                .unwrap()
                .minimum,
            dec("1.80")
        );
        // Before the first effective date there is no rule.
        assert_eq!(
            rules.price_for("coffee", "arabica", date(2023, 7, 31)),
            None
        );
        assert!(
            rules
                .price_for("coffee", "arabica", date(2023, 8, 1))
                .is_some()
        );
        assert_eq!(rules.price_for("textile", "lint", day), None);
        assert_eq!(
            rules.price_for("cocoa", "dry beans", day).unwrap().unit,
            "t"
        );
    }

    #[test]
    fn class_words_drop_the_chain_prefix() {
        let rules = Rules::default();
        let words: Vec<String> = rules.prices.iter().map(PriceRule::class_words).collect();
        assert_eq!(words[0], "cocoa");
        assert_eq!(words[1], "washed arabica");
        assert_eq!(words[5], "coffee");
    }
}
