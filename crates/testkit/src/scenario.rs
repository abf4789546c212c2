//! A generated multi-chain scenario for the auditor answers (issue 5): cocoa and
//! coffee co-operatives with member farms, traders and brands, textile garment
//! chains, and every certificate, price and plot they need, so that a clean
//! scenario holds no anomaly at all. [`Scenario::plant`] then adds one problem at
//! a time on its own small chain and says which anomaly (kind and event) lotline
//! must report for it, or which event it must reject.
//!
//! Everything is deterministic (quantities from [`Rng`]), and every figure a test
//! checks is kept here in plain integers, independently of lotline's arithmetic.

use std::collections::BTreeMap;

use lotline_proto::v1::event::Kind;
use lotline_proto::{build, v1};

use crate::chains::Rng;

/// The cocoa trader every cocoa co-op sells to.
pub const COCOA_TRADER: &str = "trader-cocoa";
/// The chocolate brand the cocoa trader sells to.
pub const COCOA_BRAND: &str = "brand-chocolate";
/// The coffee importer every coffee co-op sells to.
pub const COFFEE_TRADER: &str = "trader-coffee";
/// The roaster the coffee importer sells to.
pub const COFFEE_BRAND: &str = "brand-roaster";
/// The textile orgs each garment passes through, stage by stage.
pub const GINNER: &str = "tx-ginner";
pub const SPINNER: &str = "tx-spinner";
pub const KNITTER: &str = "tx-knitter";
pub const DYER: &str = "tx-dyer";
pub const CMT: &str = "tx-cmt";
pub const TEXTILE_BRAND: &str = "tx-brand";

/// Certificates run over the whole scenario period.
const VALID_FROM: &str = "2025-01-01";
const VALID_TO: &str = "2027-12-31";

/// The commodity a co-op grows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crop {
    Cocoa,
    Coffee,
}

impl Crop {
    pub fn chain(self) -> &'static str {
        match self {
            Crop::Cocoa => "cocoa",
            Crop::Coffee => "coffee",
        }
    }

    /// The country the farms are in (ISO 3166-1 alpha-2).
    pub fn country(self) -> &'static str {
        match self {
            Crop::Cocoa => "CI",
            Crop::Coffee => "CO",
        }
    }

    /// The UTC offset of local times.
    fn offset(self) -> &'static str {
        match self {
            Crop::Cocoa => "+00:00",
            Crop::Coffee => "-05:00",
        }
    }

    /// Where the co-op's plots lie: Côte d'Ivoire around Daloa, or Huila.
    fn origin(self) -> (f64, f64) {
        match self {
            Crop::Cocoa => (-5.5, 6.8),
            Crop::Coffee => (-75.8, 2.2),
        }
    }

    pub fn harvest_product(self) -> &'static str {
        match self {
            Crop::Cocoa => "wet cocoa beans",
            Crop::Coffee => "coffee cherry",
        }
    }

    fn trader(self) -> &'static str {
        match self {
            Crop::Cocoa => COCOA_TRADER,
            Crop::Coffee => COFFEE_TRADER,
        }
    }

    fn brand(self) -> &'static str {
        match self {
            Crop::Cocoa => COCOA_BRAND,
            Crop::Coffee => COFFEE_BRAND,
        }
    }

    /// Farm-gate price, premium and unit, at or above the Fairtrade reference
    /// (cocoa: 2400 + 240 USD/t; coffee: 1.80 + 0.20 USD/lb).
    fn farm_price(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Crop::Cocoa => ("2.60", "0.24", "kg"),
            Crop::Coffee => ("1.85", "0.20", "lb"),
        }
    }

    /// The trader's price, premium and unit for the co-op's output.
    fn trader_price(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Crop::Cocoa => ("2650", "240", "t"),
            Crop::Coffee => ("1.95", "0.20", "lb"),
        }
    }
}

/// A member farm and its one harvest.
#[derive(Debug, Clone)]
pub struct Farm {
    pub org: String,
    pub name: String,
    /// The plot the harvest names.
    pub plot: String,
    /// False when the plot was never registered.
    pub plot_registered: bool,
    pub lot: String,
    /// Harvested, delivered and received, whole kilograms.
    pub kg: u64,
    pub harvest_event: String,
    pub ship_event: String,
    pub receive_event: String,
    /// When the co-op received it (RFC 3339).
    pub receive_time: String,
    /// The co-op's site that received it.
    pub station: String,
}

/// One processing step of a co-op.
#[derive(Debug, Clone)]
pub struct Step {
    pub event_id: String,
    pub process: String,
    pub lot: String,
    pub product: String,
    /// Output over input, in hundredths (38 is 0.38).
    pub yield_pct: u64,
    /// The output, in hundredths of a kilogram.
    pub centikg: u64,
}

/// A shipment of a co-op's output.
#[derive(Debug, Clone)]
pub struct Sale {
    pub ship_event: String,
    pub receive_event: String,
    pub time: String,
    pub lot: String,
    pub to: String,
    /// Hundredths of a kilogram.
    pub centikg: u64,
}

/// The buyer's onward sale to a brand, with its DDS reference.
#[derive(Debug, Clone)]
pub struct Forward {
    pub ship_event: String,
    pub receive_event: String,
    pub from: String,
    pub brand: String,
    pub dds: String,
    /// What the brand made of it (cocoa only).
    pub product_lot: Option<String>,
}

/// A co-operative and what it did in the scenario.
#[derive(Debug, Clone)]
pub struct Coop {
    pub org: String,
    pub crop: Crop,
    /// Buying stations (sites) that receive farm deliveries.
    pub stations: Vec<String>,
    /// The processing site (transforms and sales).
    pub mill: String,
    pub farms: Vec<Farm>,
    pub aggregate: String,
    pub aggregate_event: String,
    pub steps: Vec<Step>,
    /// Sales of the final output, in time order.
    pub sales: Vec<Sale>,
    /// The buyer's payment to the co-op.
    pub trader_pay: String,
    pub forward: Option<Forward>,
}

impl Coop {
    /// The lot the co-op sells.
    pub fn output(&self) -> &str {
        self.steps
            .last()
            .map_or(self.aggregate.as_str(), |s| &s.lot)
    }

    /// The overall yield from farm product to the sold output, as a fraction.
    pub fn overall_yield(&self) -> f64 {
        self.steps
            .iter()
            .map(|s| s.yield_pct as f64 / 100.0)
            .product()
    }

    /// Every registered plot of the co-op's farms.
    pub fn registered_plots(&self) -> Vec<&str> {
        self.farms
            .iter()
            .filter(|f| f.plot_registered)
            .map(|f| f.plot.as_str())
            .collect()
    }
}

/// A garment chain: farms, then one org per textile stage.
#[derive(Debug, Clone)]
pub struct Garment {
    /// The garment lot the brand receives.
    pub lot: String,
    /// The cotton farms (the "farm" stage).
    pub farms: Vec<String>,
    /// Their harvest lots.
    pub origin_lots: Vec<String>,
    /// Stage name after the farm (as the chain report names it) → the org
    /// expected there; a stage the chain skips is absent.
    pub stages: BTreeMap<String, String>,
}

/// The problems [`Scenario::plant`] can add.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Problem {
    /// Cocoa fermenting_drying at 0.55 (band 0.35–0.40): yield_out_of_band.
    OverConversion,
    /// A co-op ships 40 kg more dry beans than it made: negative_mass_balance.
    NegativeMassBalance,
    /// A coffee pulping output declared under mass balance: coffee_mass_balance.
    CoffeeMassBalance,
    /// A trader with no certificate sells a Fairtrade lot: uncertified_seller.
    UncertifiedSeller,
    /// A trader sells after its certificate ran out: expired_certificate.
    ExpiredCertificate,
    /// A coffee payment with 0.15 USD/lb premium (reference 0.20): premium_shortfall.
    PremiumShortfall,
    /// A cocoa payment at 2300 USD/t (minimum 2400): price_below_minimum.
    PriceBelowMinimum,
    /// A garment knitted straight from lint by an uncertified knitter: the chain
    /// report's missing stage, no anomaly.
    MissingTextileStage,
    /// A harvest naming a plot never registered: plot_not_registered.
    UnregisteredPlot,
    /// A bow-tie polygon: the RegisterPlot is rejected, no anomaly.
    BadPolygon,
    /// A plot written with 4 decimals (truncated): plot_not_eudr_grade.
    NotEudrGrade,
}

impl Problem {
    pub const ALL: [Problem; 11] = [
        Problem::OverConversion,
        Problem::NegativeMassBalance,
        Problem::CoffeeMassBalance,
        Problem::UncertifiedSeller,
        Problem::ExpiredCertificate,
        Problem::PremiumShortfall,
        Problem::PriceBelowMinimum,
        Problem::MissingTextileStage,
        Problem::UnregisteredPlot,
        Problem::BadPolygon,
        Problem::NotEudrGrade,
    ];

    fn tag(self) -> &'static str {
        match self {
            Problem::OverConversion => "overconv",
            Problem::NegativeMassBalance => "negbal",
            Problem::CoffeeMassBalance => "coffeemb",
            Problem::UncertifiedSeller => "uncert",
            Problem::ExpiredCertificate => "expired",
            Problem::PremiumShortfall => "premium",
            Problem::PriceBelowMinimum => "price",
            Problem::MissingTextileStage => "nospin",
            Problem::UnregisteredPlot => "ghostplot",
            Problem::BadPolygon => "bowtie",
            Problem::NotEudrGrade => "coarse",
        }
    }
}

/// The anomaly lotline must report for a planted problem.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Expected {
    pub kind: &'static str,
    pub event_id: String,
    /// The lot concerned; empty for a plot.
    pub lot: String,
    /// The org it is charged to.
    pub org: String,
}

/// What [`Scenario::plant`] added.
#[derive(Debug, Clone)]
pub struct Planted {
    pub problem: Problem,
    /// The anomaly it must cause; `None` for a rejection or a chain-report gap.
    pub expected: Option<Expected>,
    /// Other anomalies the same events must cause (a sale beyond what a co-op had is also a
    /// ship of a lot it no longer holds).
    pub also: Vec<Expected>,
    /// The planted events, registrations first.
    pub events: Vec<v1::Event>,
    /// The co-op the problem sits in, when it has one.
    pub coop: Option<Coop>,
    /// The garment, for a textile problem.
    pub garment: Option<Garment>,
    /// The event lotline must reject.
    pub rejected: Option<String>,
    /// The org that holds no certificate, when the problem has one.
    pub uncertified: Option<String>,
}

impl Planted {
    /// Every anomaly the problem must cause.
    pub fn anomalies(&self) -> impl Iterator<Item = &Expected> {
        self.expected.iter().chain(&self.also)
    }
}

/// How a co-op's chain deviates from the clean one.
#[derive(Debug, Clone, Default)]
struct Options {
    /// Cocoa fermenting_drying yield in hundredths (default 38).
    dry_yield: Option<u64>,
    /// Coffee pulping output declared under mass balance.
    pulping_mass_balance: bool,
    /// This farm's harvest names a plot that is never registered.
    ghost_plot: Option<usize>,
    /// This farm's plot is written with 4 decimals (truncated).
    coarse_plot: Option<usize>,
    /// The buyer of the output, default the crop's trader.
    buyer: Option<String>,
    /// Whether the buyer sells on to the crop's brand.
    forward: bool,
    /// The buyer's price and premium per unit, default the clean ones.
    trader_price: Option<(&'static str, &'static str)>,
    /// Two buying stations (farms alternate between them).
    two_stations: bool,
    /// A second sale of this many kilograms of the output, two days later.
    oversell_kg: Option<u64>,
}

/// The whole scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// RegisterOrg, RegisterSite, RegisterPlot and Certify events.
    pub registrations: Vec<v1::Event>,
    /// Lot events (harvests, movements, transforms, payments), chain by chain.
    pub events: Vec<v1::Event>,
    pub coops: Vec<Coop>,
    pub garments: Vec<Garment>,
    /// Problems planted so far.
    pub planted: Vec<Planted>,
    rng: Rng,
}

/// Events of one generated part, registrations kept apart.
#[derive(Default)]
struct Part {
    registrations: Vec<v1::Event>,
    events: Vec<v1::Event>,
}

const GIVEN: &[&str] = &[
    "Kouassi", "Aya", "Yao", "Adjoua", "Koffi", "Amenan", "Kouame", "Affoue", "Jose", "Maria",
    "Luis", "Ana", "Carlos", "Lucia", "Jorge", "Rosa",
];
const FAMILY: &[&str] = &[
    "Konan",
    "N'Guessan",
    "Kouadio",
    "Yeboue",
    "Bamba",
    "Traore",
    "Gonzalez",
    "Rodriguez",
    "Perez",
    "Ramirez",
    "Cardenas",
    "Munoz",
];

/// `units` in 10^-scale, as a decimal string without trailing zeros.
pub fn decimal(units: u64, scale: u32) -> String {
    let factor = 10u64.pow(scale);
    let (whole, frac) = (units / factor, units % factor);
    if frac == 0 {
        return whole.to_string();
    }
    let digits = format!("{frac:0width$}", width = scale as usize);
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

fn event(id: &str, time: &str, org: &str, chain: &str, site: &str, kind: Kind) -> v1::Event {
    v1::Event {
        event_id: id.into(),
        event_time: time.into(),
        org: org.into(),
        chain: chain.into(),
        site: site.into(),
        extensions: BTreeMap::new(),
        kind: Some(kind),
    }
}

fn register_org(
    org: &str,
    name: &str,
    role: v1::OrgRole,
    country: &str,
    member_of: &str,
) -> v1::Event {
    event(
        &format!("reg-org-{org}"),
        "2026-01-02T09:00:00+00:00",
        org,
        "",
        "",
        Kind::RegisterOrg(v1::RegisterOrg {
            name: name.into(),
            role: role as i32,
            country: country.into(),
            gln: String::new(),
            member_of: member_of.into(),
            party: String::new(),
        }),
    )
}

/// `registrations`, then each co-op's confirmation of every member a registration among them
/// names (after them all, so the co-op is registered first).
fn confirmed(mut registrations: Vec<v1::Event>) -> Vec<v1::Event> {
    let confirmations: Vec<v1::Event> = registrations
        .iter()
        .filter_map(|e| match &e.kind {
            Some(Kind::RegisterOrg(r)) if !r.member_of.is_empty() => Some(event(
                &format!("member-{}-{}", r.member_of, e.org),
                "2026-01-02T09:45:00+00:00",
                &r.member_of,
                "",
                "",
                lotline_proto::build::confirm_member(e.org.clone(), "2020-01-01"),
            )),
            _ => None,
        })
        .collect();
    registrations.extend(confirmations);
    registrations
}

fn register_site(org: &str, site: &str, country: &str) -> v1::Event {
    event(
        &format!("reg-site-{site}"),
        "2026-01-02T09:30:00+00:00",
        org,
        "",
        "",
        Kind::RegisterSite(v1::RegisterSite {
            site: site.into(),
            name: format!("{site} ({org})"),
            gln: String::new(),
            country: country.into(),
        }),
    )
}

fn register_plot(org: &str, plot: &str, geometry: String, area: &str, country: &str) -> v1::Event {
    event(
        &format!("reg-plot-{plot}"),
        "2026-01-03T09:00:00+00:00",
        org,
        "",
        "",
        build::register_plot(plot, geometry, area, country),
    )
}

/// A certificate for `org`, `standard`, covering `products`, over `from..=to`.
pub fn certify(org: &str, standard: &str, products: &[&str], from: &str, to: &str) -> v1::Event {
    event(
        &format!("cert-{org}-{}", standard.replace(' ', "-").to_lowercase()),
        "2026-01-02T10:00:00+00:00",
        org,
        "",
        "",
        Kind::Certify(v1::Certify {
            standard: standard.into(),
            certificate_id: match standard {
                "GOTS" => format!("CU-{org}"),
                "EU organic" => format!("EU-ORG-{org}"),
                _ => format!("FLO-{org}"),
            },
            products: products.iter().map(|p| p.to_string()).collect(),
            valid_from: from.into(),
            valid_to: to.into(),
            outcome: "certified".into(),
            ..Default::default()
        }),
    )
}

/// A closed square ring of `side` degrees from (lon, lat), six decimals.
fn square_ring(lon: f64, lat: f64, side: f64, decimals: usize) -> String {
    let (a, b, c, d) = (lon, lat, lon + side, lat + side);
    let p = |x: f64, y: f64| format!("[{x:.decimals$},{y:.decimals$}]");
    format!(
        "[{},{},{},{},{}]",
        p(a, b),
        p(c, b),
        p(c, d),
        p(a, d),
        p(a, b)
    )
}

/// A plot geometry: mostly polygons, some points (small plots) and multipolygons.
fn geometry(n: usize, lon: f64, lat: f64, decimals: usize) -> (String, &'static str) {
    match n % 9 {
        4 => (
            format!(r#"{{"type":"Point","coordinates":[{lon:.decimals$},{lat:.decimals$}]}}"#),
            "2.5",
        ),
        7 => (
            format!(
                r#"{{"type":"MultiPolygon","coordinates":[[{}],[{}]]}}"#,
                square_ring(lon, lat, 0.0012, decimals),
                square_ring(lon + 0.0018, lat + 0.0018, 0.001, decimals)
            ),
            "2.9",
        ),
        _ => (
            format!(
                r#"{{"type":"Polygon","coordinates":[{}]}}"#,
                square_ring(lon, lat, 0.002, decimals)
            ),
            "4.9",
        ),
    }
}

impl Scenario {
    /// A clean scenario: `coops` co-ops (cocoa and coffee alternately) of
    /// `farms` member farms each, and `garments` textile garment chains. Lists
    /// no anomaly.
    pub fn clean(seed: u64, coops: usize, farms: usize, garments: usize) -> Scenario {
        Scenario::clean_part(seed, 0..coops, farms, true, garments)
    }

    /// The clean scenario of [`Scenario::clean`] generated `per` co-ops at a time, for logs
    /// too large to hold in memory at once: the parts, recorded in order, make one clean log of
    /// `coops` co-ops (the traders, brands and textile orgs come with the first part, the garment
    /// chains with the last). Each part draws from its own seed, so names and quantities differ from
    /// [`Scenario::clean`]'s.
    pub fn clean_in_parts(
        seed: u64,
        coops: usize,
        farms: usize,
        garments: usize,
        per: usize,
    ) -> impl Iterator<Item = Scenario> {
        let per = per.max(1);
        let parts = coops.div_ceil(per).max(1);
        (0..parts).map(move |p| {
            let from = p * per;
            let last = p + 1 == parts;
            Scenario::clean_part(
                seed.wrapping_add(p as u64),
                from..(from + per).min(coops),
                farms,
                p == 0,
                if last { garments } else { 0 },
            )
        })
    }

    /// Co-ops `coops` (numbered as in a whole clean scenario), then `garments` textile chains;
    /// the `first` part also registers the buyers and the textile orgs.
    fn clean_part(
        seed: u64,
        coops: std::ops::Range<usize>,
        farms: usize,
        first: bool,
        garments: usize,
    ) -> Scenario {
        let mut s = Scenario {
            registrations: Vec::new(),
            events: Vec::new(),
            coops: Vec::new(),
            garments: Vec::new(),
            planted: Vec::new(),
            rng: Rng::new(seed),
        };
        let mut part = Part::default();
        if first {
            s.buyers(&mut part);
        }
        for c in coops {
            let crop = if c % 2 == 0 {
                Crop::Cocoa
            } else {
                Crop::Coffee
            };
            let org = format!("coop-{}-{c:03}", crop.country().to_lowercase());
            let options = Options {
                forward: true,
                ..Options::default()
            };
            let coop = s.coop(&mut part, &org, crop, c, farms, &options);
            s.coops.push(coop);
        }
        if first {
            s.textile_orgs(&mut part);
        }
        for g in 0..garments {
            let garment = s.garment(&mut part, &format!("g{g:02}"), g, None);
            s.garments.push(garment);
        }
        s.registrations = confirmed(part.registrations);
        s.events = part.events;
        s
    }

    /// Registrations, then the lot events: everything, planted problems included.
    pub fn all(&self) -> Vec<v1::Event> {
        self.registrations
            .iter()
            .chain(&self.events)
            .cloned()
            .collect()
    }

    /// Every farm of the clean co-ops.
    pub fn farms(&self) -> impl Iterator<Item = &Farm> {
        self.coops.iter().flat_map(|c| c.farms.iter())
    }

    /// The traders and brands every co-op sells through, with certificates.
    fn buyers(&mut self, part: &mut Part) {
        use v1::OrgRole as R;
        for (org, name, role, country, product) in [
            (
                COCOA_TRADER,
                "Abidjan Cocoa Trading SA",
                R::Trader,
                "CH",
                "cocoa",
            ),
            (COCOA_BRAND, "Noord Chocolade B.V.", R::Brand, "NL", "cocoa"),
            (
                COFFEE_TRADER,
                "Hanse Green Coffee GmbH",
                R::Trader,
                "DE",
                "coffee",
            ),
            (
                COFFEE_BRAND,
                "Hafen Roesterei GmbH",
                R::Brand,
                "DE",
                "coffee",
            ),
        ] {
            part.registrations
                .push(register_org(org, name, role, country, ""));
            part.registrations
                .push(certify(org, "fairtrade", &[product], VALID_FROM, VALID_TO));
        }
        part.registrations
            .push(register_site(COCOA_BRAND, "brand-chocolate-zaandam", "NL"));
    }

    /// A co-op, its farms and its whole season: each member farm registers with
    /// its plot, harvests (claims fairtrade), delivers to a buying station and
    /// is paid; the co-op aggregates, processes (cocoa fermenting_drying 0.38,
    /// coffee pulping 0.20 then hulling 0.80), sells the output to its buyer, who
    /// pays for it and, when `forward`, ships it to the brand with a DDS
    /// reference (a cocoa brand makes bars of it).
    fn coop(
        &mut self,
        part: &mut Part,
        org: &str,
        crop: Crop,
        index: usize,
        farms: usize,
        o: &Options,
    ) -> Coop {
        use v1::OrgRole as R;
        let chain = crop.chain();
        let country = crop.country();
        let off = crop.offset();
        let at = |day: &str, hour: usize, minute: usize| {
            format!("2026-{day}T{hour:02}:{minute:02}:00{off}")
        };
        let stations: Vec<String> = if o.two_stations {
            vec![format!("{org}-station-a"), format!("{org}-station-b")]
        } else {
            vec![format!("{org}-station")]
        };
        let mill = format!("{org}-mill");
        part.registrations.push(register_org(
            org,
            &format!("Cooperative {index} ({chain})"),
            R::Cooperative,
            country,
            "",
        ));
        for site in stations.iter().chain([&mill]) {
            part.registrations.push(register_site(org, site, country));
        }
        part.registrations
            .push(certify(org, "fairtrade", &[chain], VALID_FROM, VALID_TO));

        // Farms: registration, plot, harvest, delivery, payment.
        let (lon0, lat0) = crop.origin();
        // A grid of 40 x 8 co-op areas, used again from the 321st co-op on, so that every plot
        // stays inside its country however many co-ops there are.
        let lon_c = lon0 + (index % 40) as f64 * 0.05;
        let lat_c = lat0 + ((index / 40) % 8) as f64 * 0.3;
        let (farm_price, farm_premium, farm_unit) = crop.farm_price();
        let mut farm_list = Vec::new();
        for f in 0..farms {
            let farm = format!("{org}-farm-{f:03}");
            let name = format!(
                "{} {}",
                GIVEN[self.rng.below(GIVEN.len() as u64) as usize],
                FAMILY[self.rng.below(FAMILY.len() as u64) as usize]
            );
            let mut reg = register_org(&farm, &name, R::Farm, country, org);
            reg.extensions
                .insert("contact_phone".into(), format!("+000 {index:03} {f:04}"));
            part.registrations.push(reg);
            let ghost = o.ghost_plot == Some(f);
            let plot = if ghost {
                format!("{farm}-plot-unmapped")
            } else {
                format!("{farm}-plot")
            };
            if !ghost {
                let lon = lon_c + (f % 10) as f64 * 0.004;
                let lat = lat_c + (f / 10) as f64 * 0.004;
                let decimals = if o.coarse_plot == Some(f) { 4 } else { 6 };
                let (geometry, area) = geometry(f, lon, lat, decimals);
                part.registrations
                    .push(register_plot(&farm, &plot, geometry, area, country));
            }
            let kg = 100 + self.rng.below(800);
            let lot = format!("H-{org}-{f:03}");
            let (harvest_event, ship_event, receive_event) = (
                format!("h-{lot}"),
                format!("ship-{lot}"),
                format!("recv-{lot}"),
            );
            let station = stations[f % stations.len()].clone();
            let harvest_time = at("03-02", 7 + f / 60, f % 60);
            let receive_time = at("03-03", 10 + f / 60, f % 60);
            let mut harvest = event(
                &harvest_event,
                &harvest_time,
                &farm,
                chain,
                "",
                Kind::Harvest(v1::Harvest {
                    lot: lot.clone(),
                    plot: plot.clone(),
                    product: crop.harvest_product().into(),
                    quantity: build::quantity(kg.to_string(), "kg"),
                    harvest_start: "2026-02-23".into(),
                    harvest_end: "2026-03-02".into(),
                    custody: 0,
                    claims: vec!["fairtrade".into()],
                }),
            );
            harvest
                .extensions
                .insert("picker".into(), format!("{name}'s family"));
            part.events.push(harvest);
            let documents = vec![v1::BusinessDocument {
                r#type: "grn".into(),
                id: format!("GRN-{lot}"),
            }];
            part.events.push(event(
                &ship_event,
                &receive_time,
                &farm,
                chain,
                "",
                Kind::Ship(v1::Ship {
                    lots: vec![build::lot_quantity(&lot, kg.to_string(), "kg")],
                    to_org: org.into(),
                    documents: documents.clone(),
                }),
            ));
            part.events.push(event(
                &receive_event,
                &receive_time,
                org,
                chain,
                &station,
                Kind::Receive(v1::Receive {
                    lots: vec![build::lot_quantity(&lot, kg.to_string(), "kg")],
                    from_org: farm.clone(),
                    documents,
                }),
            ));
            part.events.push(event(
                &format!("pay-{lot}"),
                &at("03-04", 10, f % 60),
                org,
                chain,
                "",
                Kind::Pay(v1::Pay {
                    lots: vec![build::lot_quantity(&lot, kg.to_string(), "kg")],
                    payee_org: farm.clone(),
                    currency: "USD".into(),
                    price_per_unit: farm_price.into(),
                    price_unit: farm_unit.into(),
                    premium_per_unit: farm_premium.into(),
                    contract_date: "2026-03-01".into(),
                }),
            ));
            farm_list.push(Farm {
                org: farm,
                name,
                plot,
                plot_registered: !ghost,
                lot,
                kg,
                harvest_event,
                ship_event,
                receive_event,
                receive_time,
                station,
            });
        }

        // Aggregation, then processing.
        let total: u64 = farm_list.iter().map(|f| f.kg).sum();
        let aggregate = format!("AGG-{org}");
        let aggregate_event = format!("agg-{org}");
        part.events.push(event(
            &aggregate_event,
            &at("03-05", 8, 0),
            org,
            chain,
            &mill,
            Kind::Transform(v1::Transform {
                inputs: farm_list
                    .iter()
                    .map(|f| build::lot_quantity(&f.lot, f.kg.to_string(), "kg"))
                    .collect(),
                outputs: vec![v1::OutputLot {
                    lot: aggregate.clone(),
                    product: crop.harvest_product().into(),
                    quantity: build::quantity(total.to_string(), "kg"),
                    custody: 0,
                    claims: vec!["fairtrade".into()],
                }],
                process: "aggregation".into(),
                conversion_ratio: "1".into(),
            }),
        ));
        let plan: Vec<(&str, &str, u64, &str)> = match crop {
            Crop::Cocoa => vec![(
                "fermenting_drying",
                "dry cocoa beans",
                o.dry_yield.unwrap_or(38),
                "03-12",
            )],
            Crop::Coffee => vec![
                ("pulping", "parchment coffee", 20, "03-06"),
                ("hulling", "green coffee washed arabica", 80, "03-14"),
            ],
        };
        let mut steps: Vec<Step> = Vec::new();
        let mut input = (aggregate.clone(), total * 100);
        for (n, (process, product, pct, day)) in plan.into_iter().enumerate() {
            assert_eq!(input.1 * pct % 100, 0, "yields stay exact in hundredths");
            let centikg = input.1 * pct / 100;
            let lot = format!("{}-{org}", process.to_uppercase().replace('_', "-"));
            let event_id = format!("{process}-{org}");
            let custody = if process == "pulping" && o.pulping_mass_balance {
                v1::CustodyModel::MassBalance as i32
            } else {
                0
            };
            part.events.push(event(
                &event_id,
                &at(day, 17, n),
                org,
                chain,
                &mill,
                Kind::Transform(v1::Transform {
                    inputs: vec![build::lot_quantity(&input.0, decimal(input.1, 2), "kg")],
                    outputs: vec![v1::OutputLot {
                        lot: lot.clone(),
                        product: product.into(),
                        quantity: build::quantity(decimal(centikg, 2), "kg"),
                        custody,
                        claims: vec!["fairtrade".into()],
                    }],
                    process: process.into(),
                    conversion_ratio: decimal(pct, 2),
                }),
            ));
            steps.push(Step {
                event_id,
                process: process.into(),
                lot: lot.clone(),
                product: product.into(),
                yield_pct: pct,
                centikg,
            });
            input = (lot, centikg);
        }

        // The sale to the buyer, its receipt and payment.
        let (output, centikg) = input;
        let buyer = o.buyer.clone().unwrap_or(crop.trader().to_string());
        let mut sales = vec![Sale {
            ship_event: format!("sale-{org}"),
            receive_event: format!("buy-{org}"),
            time: at("03-20", 9, 0),
            lot: output.clone(),
            to: buyer.clone(),
            centikg,
        }];
        if let Some(extra) = o.oversell_kg {
            sales.push(Sale {
                ship_event: format!("sale-{org}-extra"),
                receive_event: format!("buy-{org}-extra"),
                time: at("03-22", 9, 0),
                lot: output.clone(),
                to: buyer.clone(),
                centikg: extra * 100,
            });
        }
        for sale in &sales {
            let documents = vec![v1::BusinessDocument {
                r#type: "invoice".into(),
                id: format!("INV-{}", sale.ship_event),
            }];
            let amount = decimal(sale.centikg, 2);
            part.events.push(event(
                &sale.ship_event,
                &sale.time,
                org,
                chain,
                &mill,
                Kind::Ship(v1::Ship {
                    lots: vec![build::lot_quantity(&output, amount.clone(), "kg")],
                    to_org: buyer.clone(),
                    documents: documents.clone(),
                }),
            ));
            part.events.push(event(
                &sale.receive_event,
                &sale.time.replace("T09:", "T15:"),
                &buyer,
                chain,
                "",
                Kind::Receive(v1::Receive {
                    lots: vec![build::lot_quantity(&output, amount, "kg")],
                    from_org: org.into(),
                    documents,
                }),
            ));
        }
        let (price, premium) = o.trader_price.unwrap_or_else(|| {
            let (p, q, _) = crop.trader_price();
            (p, q)
        });
        let trader_pay = format!("paytr-{org}");
        part.events.push(event(
            &trader_pay,
            &at("03-25", 10, 0),
            &buyer,
            chain,
            "",
            Kind::Pay(v1::Pay {
                lots: vec![build::lot_quantity(&output, decimal(centikg, 2), "kg")],
                payee_org: org.into(),
                currency: "USD".into(),
                price_per_unit: price.into(),
                price_unit: crop.trader_price().2.into(),
                premium_per_unit: premium.into(),
                contract_date: "2026-03-15".into(),
            }),
        ));

        // The buyer's onward sale to the brand, with the EUDR due-diligence
        // statement, and (cocoa) what the brand makes of it.
        let forward = o.forward.then(|| {
            let brand = crop.brand();
            let dds = format!("DDS-26-{}", org.to_uppercase());
            let ship_event = format!("fwd-{org}");
            let receive_event = format!("brandrecv-{org}");
            let amount = decimal(centikg, 2);
            part.events.push(event(
                &ship_event,
                "2026-04-10T09:00:00+01:00",
                &buyer,
                chain,
                "",
                Kind::Ship(v1::Ship {
                    lots: vec![build::lot_quantity(&output, amount.clone(), "kg")],
                    to_org: brand.into(),
                    documents: vec![
                        v1::BusinessDocument {
                            r#type: "bol".into(),
                            id: format!("BOL-{org}"),
                        },
                        v1::BusinessDocument {
                            r#type: "dds".into(),
                            id: dds.clone(),
                        },
                        v1::BusinessDocument {
                            r#type: "dds_verification".into(),
                            id: format!("V-{index:04}"),
                        },
                    ],
                }),
            ));
            part.events.push(event(
                &receive_event,
                "2026-04-20T09:00:00+02:00",
                brand,
                chain,
                "",
                Kind::Receive(v1::Receive {
                    lots: vec![build::lot_quantity(&output, amount.clone(), "kg")],
                    from_org: buyer.clone(),
                    documents: vec![],
                }),
            ));
            let product_lot = (crop == Crop::Cocoa).then(|| {
                let bars = format!("BAR-{org}");
                part.events.push(event(
                    &format!("make-{org}"),
                    "2026-05-12T11:00:00+02:00",
                    brand,
                    chain,
                    "brand-chocolate-zaandam",
                    Kind::Transform(v1::Transform {
                        inputs: vec![build::lot_quantity(&output, amount.clone(), "kg")],
                        outputs: vec![v1::OutputLot {
                            lot: bars.clone(),
                            product: "dark chocolate bar 100 g".into(),
                            // Ten 100 g bars of 70 % per kilogram of beans, roughly.
                            quantity: build::quantity((centikg / 10).to_string(), "pcs"),
                            custody: 0,
                            claims: vec!["fairtrade".into()],
                        }],
                        process: "manufacturing".into(),
                        conversion_ratio: String::new(),
                    }),
                ));
                bars
            });
            Forward {
                ship_event,
                receive_event,
                from: buyer.clone(),
                brand: brand.into(),
                dds,
                product_lot,
            }
        });
        Coop {
            org: org.into(),
            crop,
            stations,
            mill,
            farms: farm_list,
            aggregate,
            aggregate_event,
            steps,
            sales,
            trader_pay,
            forward,
        }
    }

    /// The shared textile orgs and their certificates.
    fn textile_orgs(&mut self, part: &mut Part) {
        use v1::OrgRole as R;
        for (org, name, role, country) in [
            (GINNER, "Saurashtra Ginning Works", R::Processor, "IN"),
            (SPINNER, "Ahmedabad Spinning Mills", R::Processor, "IN"),
            (KNITTER, "Surat Knitting Co.", R::Processor, "IN"),
            (DYER, "Tiruppur Dye House", R::Processor, "IN"),
            (CMT, "Dhaka Garment Makers Ltd", R::Manufacturer, "BD"),
            (TEXTILE_BRAND, "Nordic Basics AB", R::Brand, "SE"),
        ] {
            part.registrations
                .push(register_org(org, name, role, country, ""));
            for standard in ["GOTS", "Fairtrade Textile Standard"] {
                part.registrations
                    .push(certify(org, standard, &["cotton"], VALID_FROM, VALID_TO));
            }
        }
    }

    /// One garment chain: two farms growing Fairtrade organic cotton, ginning,
    /// spinning (unless `knitter_without_spinning` names the knitter that works
    /// from lint), knitting, dyeing, cut-make-trim (kilograms into pieces) and
    /// the brand's receipt. The planted chain claims nothing.
    fn garment(
        &mut self,
        part: &mut Part,
        tag: &str,
        index: usize,
        knitter_without_spinning: Option<&str>,
    ) -> Garment {
        use v1::OrgRole as R;
        let chain = "textile";
        let claims: Vec<String> = if knitter_without_spinning.is_some() {
            Vec::new()
        } else {
            vec!["fairtrade".into(), "organic".into()]
        };
        let mut stages = BTreeMap::new();
        let mut farms = Vec::new();
        let mut harvested: Vec<(String, u64)> = Vec::new();
        for i in 0..2 {
            let farm = format!("tx-farm-{tag}-{i}");
            part.registrations.push(register_org(
                &farm,
                &format!("Cotton farmer {tag}-{i}, Amreli"),
                R::Farm,
                "IN",
                "",
            ));
            for standard in ["EU organic", "fairtrade"] {
                part.registrations.push(certify(
                    &farm,
                    standard,
                    &["cotton"],
                    VALID_FROM,
                    VALID_TO,
                ));
            }
            let plot = format!("{farm}-plot");
            let (geometry, area) = geometry(
                2 * index + i,
                71.2 + (2 * index + i) as f64 * 0.004,
                21.6,
                6,
            );
            part.registrations
                .push(register_plot(&farm, &plot, geometry, area, "IN"));
            let kg = 1000 + self.rng.below(1000);
            let lot = format!("TXH-{tag}-{i}");
            part.events.push(event(
                &format!("h-{lot}"),
                &format!("2026-10-2{i}T08:00:00+05:30"),
                &farm,
                chain,
                "",
                Kind::Harvest(v1::Harvest {
                    lot: lot.clone(),
                    plot,
                    product: "seed cotton".into(),
                    quantity: build::quantity(kg.to_string(), "kg"),
                    custody: 0,
                    claims: claims.clone(),
                    ..Default::default()
                }),
            ));
            self.hand_over(
                part,
                &format!("deliver-{lot}"),
                "2026-10-23T12:00:00+05:30",
                &farm,
                GINNER,
                chain,
                &lot,
                &kg.to_string(),
                "kg",
            );
            farms.push(farm);
            harvested.push((lot, kg));
        }
        // Grams, so every step's output is exact to the gram.
        let seed_g: u64 = harvested.iter().map(|(_, kg)| kg * 1000).sum();
        let lint_g = seed_g * 35 / 100;
        let kg3 = |g: u64| decimal(g, 3);
        let lint = format!("TXL-{tag}");
        part.events.push(event(
            &format!("gin-{tag}"),
            "2026-10-25T18:00:00+05:30",
            GINNER,
            chain,
            "",
            Kind::Transform(v1::Transform {
                inputs: harvested
                    .iter()
                    .map(|(lot, kg)| build::lot_quantity(lot, kg.to_string(), "kg"))
                    .collect(),
                outputs: vec![
                    v1::OutputLot {
                        lot: lint.clone(),
                        product: "cotton lint".into(),
                        quantity: build::quantity(kg3(lint_g), "kg"),
                        custody: 0,
                        claims: claims.clone(),
                    },
                    v1::OutputLot {
                        lot: format!("TXS-{tag}"),
                        product: "cotton seed".into(),
                        quantity: build::quantity(kg3(seed_g * 60 / 100), "kg"),
                        custody: 0,
                        claims: Vec::new(),
                    },
                ],
                process: "ginning".into(),
                conversion_ratio: String::new(),
            }),
        ));
        stages.insert("ginner".into(), GINNER.into());
        let mut made = (lint, lint_g, GINNER.to_string());
        let mut steps: Vec<(&str, &str, String, u64, &str, &str)> = Vec::new();
        let knitter = match knitter_without_spinning {
            Some(k) => k.to_string(),
            None => {
                steps.push((
                    "spinning",
                    "combed yarn 30s",
                    SPINNER.into(),
                    85,
                    "spinner",
                    "2026-11-03T17:00:00+05:30",
                ));
                KNITTER.to_string()
            }
        };
        steps.push((
            "knitting",
            "single jersey greige",
            knitter,
            96,
            "weaver/knitter",
            "2026-11-09T17:00:00+05:30",
        ));
        steps.push((
            "dyeing",
            "single jersey dyed navy",
            DYER.into(),
            94,
            "wet processing",
            "2026-11-14T17:00:00+05:30",
        ));
        for (n, (process, product, org, pct, stage, time)) in steps.into_iter().enumerate() {
            self.hand_over(
                part,
                &format!("tx-{tag}-{n}"),
                &time.replace("T17:", "T08:"),
                &made.2,
                &org,
                chain,
                &made.0,
                &kg3(made.1),
                "kg",
            );
            let lot = format!("TX{}-{tag}", process[..3].to_uppercase());
            let grams = made.1 * pct / 100;
            part.events.push(event(
                &format!("{process}-{tag}"),
                time,
                &org,
                chain,
                "",
                Kind::Transform(v1::Transform {
                    inputs: vec![build::lot_quantity(&made.0, kg3(made.1), "kg")],
                    outputs: vec![v1::OutputLot {
                        lot: lot.clone(),
                        product: product.into(),
                        quantity: build::quantity(kg3(grams), "kg"),
                        custody: 0,
                        claims: claims.clone(),
                    }],
                    process: process.into(),
                    conversion_ratio: String::new(),
                }),
            ));
            stages.insert(stage.into(), org.clone());
            made = (lot, grams, org);
        }
        self.hand_over(
            part,
            &format!("tx-{tag}-cmt"),
            "2026-11-16T09:00:00+05:30",
            &made.2,
            CMT,
            chain,
            &made.0,
            &kg3(made.1),
            "kg",
        );
        let garment = format!("TXG-{tag}");
        // A 250 g t-shirt.
        let pieces = made.1 / 250;
        part.events.push(event(
            &format!("cmt-{tag}"),
            "2026-11-19T17:00:00+06:00",
            CMT,
            chain,
            "",
            Kind::Transform(v1::Transform {
                inputs: vec![build::lot_quantity(&made.0, kg3(made.1), "kg")],
                outputs: vec![v1::OutputLot {
                    lot: garment.clone(),
                    product: "crew-neck t-shirt navy".into(),
                    quantity: build::quantity(pieces.to_string(), "pcs"),
                    custody: 0,
                    claims: claims.clone(),
                }],
                process: "cut_make_trim".into(),
                conversion_ratio: String::new(),
            }),
        ));
        stages.insert("cut-make-trim".into(), CMT.into());
        self.hand_over(
            part,
            &format!("tx-{tag}-brand"),
            "2026-11-20T09:00:00+06:00",
            CMT,
            TEXTILE_BRAND,
            chain,
            &garment,
            &pieces.to_string(),
            "pcs",
        );
        stages.insert("brand".into(), TEXTILE_BRAND.into());
        Garment {
            lot: garment,
            farms,
            origin_lots: harvested.into_iter().map(|(lot, _)| lot).collect(),
            stages,
        }
    }

    /// A shipment and its receipt at the same time.
    #[allow(clippy::too_many_arguments)]
    fn hand_over(
        &mut self,
        part: &mut Part,
        id: &str,
        time: &str,
        from: &str,
        to: &str,
        chain: &str,
        lot: &str,
        amount: &str,
        unit: &str,
    ) {
        let documents = vec![v1::BusinessDocument {
            r#type: "desadv".into(),
            id: format!("DN-{id}"),
        }];
        part.events.push(event(
            &format!("{id}-ship"),
            time,
            from,
            chain,
            "",
            Kind::Ship(v1::Ship {
                lots: vec![build::lot_quantity(lot, amount, unit)],
                to_org: to.into(),
                documents: documents.clone(),
            }),
        ));
        part.events.push(event(
            &format!("{id}-recv"),
            time,
            to,
            chain,
            "",
            Kind::Receive(v1::Receive {
                lots: vec![build::lot_quantity(lot, amount, unit)],
                from_org: from.into(),
                documents,
            }),
        ));
    }

    /// Adds one problem on its own small chain (three farms where a co-op is
    /// needed) and returns what lotline must answer for it. Each problem can be
    /// planted once.
    pub fn plant(&mut self, problem: Problem) -> Planted {
        assert!(
            self.planted.iter().all(|p| p.problem != problem),
            "{problem:?} is already planted"
        );
        use v1::OrgRole as R;
        let tag = problem.tag();
        let coop_org = format!("plant-{tag}-coop");
        let index = 100 + self.planted.len();
        let mut part = Part::default();
        let mut planted = Planted {
            problem,
            expected: None,
            also: Vec::new(),
            events: Vec::new(),
            coop: None,
            garment: None,
            rejected: None,
            uncertified: None,
        };
        let expect = |kind: &'static str, event_id: &str, lot: &str, org: &str| {
            Some(Expected {
                kind,
                event_id: event_id.into(),
                lot: lot.into(),
                org: org.into(),
            })
        };
        match problem {
            Problem::OverConversion => {
                let o = Options {
                    dry_yield: Some(55),
                    ..Options::default()
                };
                let coop = self.coop(&mut part, &coop_org, Crop::Cocoa, index, 3, &o);
                let step = &coop.steps[0];
                planted.expected =
                    expect("yield_out_of_band", &step.event_id, &step.lot, &coop_org);
                planted.coop = Some(coop);
            }
            Problem::NegativeMassBalance => {
                let o = Options {
                    two_stations: true,
                    oversell_kg: Some(40),
                    ..Options::default()
                };
                let coop = self.coop(&mut part, &coop_org, Crop::Cocoa, index, 4, &o);
                let extra = &coop.sales[1];
                planted.expected = expect(
                    "negative_mass_balance",
                    &extra.ship_event,
                    &extra.lot,
                    &coop_org,
                );
                planted.also = expect("not_holder", &extra.ship_event, &extra.lot, &coop_org)
                    .into_iter()
                    .collect();
                planted.coop = Some(coop);
            }
            Problem::CoffeeMassBalance => {
                let o = Options {
                    pulping_mass_balance: true,
                    ..Options::default()
                };
                let coop = self.coop(&mut part, &coop_org, Crop::Coffee, index, 3, &o);
                let step = &coop.steps[0];
                planted.expected =
                    expect("coffee_mass_balance", &step.event_id, &step.lot, &coop_org);
                planted.coop = Some(coop);
            }
            Problem::UncertifiedSeller => {
                // The trader's onward shipment went unrecorded; the uncertified
                // trader that received it records its receipt and sells it on.
                let coop = self.coop(
                    &mut part,
                    &coop_org,
                    Crop::Cocoa,
                    index,
                    3,
                    &Options::default(),
                );
                let seller = format!("plant-{tag}-trader");
                part.registrations.push(register_org(
                    &seller,
                    "Grey Market Cocoa Ltd",
                    R::Trader,
                    "GH",
                    "",
                ));
                let lot = coop.output().to_string();
                let amount = decimal(coop.sales[0].centikg, 2);
                part.events.push(event(
                    &format!("{seller}-recv"),
                    "2026-04-01T09:00:00+00:00",
                    &seller,
                    "cocoa",
                    "",
                    Kind::Receive(v1::Receive {
                        lots: vec![build::lot_quantity(&lot, amount.clone(), "kg")],
                        from_org: COCOA_TRADER.into(),
                        documents: vec![],
                    }),
                ));
                let ship = format!("{seller}-ship");
                part.events.push(event(
                    &ship,
                    "2026-04-10T09:00:00+00:00",
                    &seller,
                    "cocoa",
                    "",
                    Kind::Ship(v1::Ship {
                        lots: vec![build::lot_quantity(&lot, amount.clone(), "kg")],
                        to_org: COCOA_BRAND.into(),
                        documents: vec![],
                    }),
                ));
                part.events.push(event(
                    &format!("{seller}-brandrecv"),
                    "2026-04-20T09:00:00+02:00",
                    COCOA_BRAND,
                    "cocoa",
                    "",
                    Kind::Receive(v1::Receive {
                        lots: vec![build::lot_quantity(&lot, amount, "kg")],
                        from_org: seller.clone(),
                        documents: vec![],
                    }),
                ));
                planted.expected = expect("uncertified_seller", &ship, &lot, &seller);
                planted.uncertified = Some(seller);
                planted.coop = Some(coop);
            }
            Problem::ExpiredCertificate => {
                // Certified when it bought (2026-03-20), lapsed when it sold on
                // (2026-04-10).
                let trader = format!("plant-{tag}-trader");
                part.registrations.push(register_org(
                    &trader,
                    "Lapsed Licence Trading BV",
                    R::Trader,
                    "BE",
                    "",
                ));
                part.registrations.push(certify(
                    &trader,
                    "fairtrade",
                    &["cocoa"],
                    "2024-04-01",
                    "2026-03-31",
                ));
                let o = Options {
                    buyer: Some(trader.clone()),
                    forward: true,
                    ..Options::default()
                };
                let coop = self.coop(&mut part, &coop_org, Crop::Cocoa, index, 3, &o);
                let forward = coop.forward.as_ref().expect("forwarded");
                planted.expected = expect(
                    "expired_certificate",
                    &forward.ship_event,
                    coop.output(),
                    &trader,
                );
                planted.coop = Some(coop);
            }
            Problem::PremiumShortfall => {
                let o = Options {
                    trader_price: Some(("1.95", "0.15")),
                    ..Options::default()
                };
                let coop = self.coop(&mut part, &coop_org, Crop::Coffee, index, 3, &o);
                planted.expected = expect(
                    "premium_shortfall",
                    &coop.trader_pay,
                    coop.output(),
                    COFFEE_TRADER,
                );
                planted.coop = Some(coop);
            }
            Problem::PriceBelowMinimum => {
                let o = Options {
                    trader_price: Some(("2300", "240")),
                    ..Options::default()
                };
                let coop = self.coop(&mut part, &coop_org, Crop::Cocoa, index, 3, &o);
                planted.expected = expect(
                    "price_below_minimum",
                    &coop.trader_pay,
                    coop.output(),
                    COCOA_TRADER,
                );
                planted.coop = Some(coop);
            }
            Problem::MissingTextileStage => {
                let knitter = format!("plant-{tag}-knitter");
                part.registrations.push(register_org(
                    &knitter,
                    "Backyard Knitters",
                    R::Processor,
                    "IN",
                    "",
                ));
                let garment = self.garment(&mut part, &format!("p{tag}"), index, Some(&knitter));
                planted.uncertified = Some(knitter);
                planted.garment = Some(garment);
            }
            Problem::UnregisteredPlot => {
                let o = Options {
                    ghost_plot: Some(1),
                    ..Options::default()
                };
                let coop = self.coop(&mut part, &coop_org, Crop::Cocoa, index, 3, &o);
                let farm = &coop.farms[1];
                planted.expected = expect(
                    "plot_not_registered",
                    &farm.harvest_event,
                    &farm.lot,
                    &farm.org,
                );
                planted.coop = Some(coop);
            }
            Problem::NotEudrGrade => {
                let o = Options {
                    coarse_plot: Some(0),
                    ..Options::default()
                };
                let coop = self.coop(&mut part, &coop_org, Crop::Cocoa, index, 3, &o);
                let farm = &coop.farms[0];
                planted.expected = expect(
                    "plot_not_eudr_grade",
                    &format!("reg-plot-{}", farm.plot),
                    "",
                    &farm.org,
                );
                planted.coop = Some(coop);
            }
            Problem::BadPolygon => {
                let farm = format!("plant-{tag}-farm");
                part.registrations.push(register_org(
                    &farm,
                    "Bow-tie Smallholding",
                    R::Farm,
                    "CI",
                    "",
                ));
                // (a,b) → (c,d) crosses (c,b) → (a,d): a bow tie.
                let bow_tie = r#"{"type":"Polygon","coordinates":[[[-5.400000,6.900000],[-5.398000,6.902000],[-5.398000,6.900000],[-5.400000,6.902000],[-5.400000,6.900000]]]}"#;
                let plot = format!("{farm}-plot");
                let reg = register_plot(&farm, &plot, bow_tie.into(), "4", "CI");
                planted.rejected = Some(reg.event_id.clone());
                part.registrations.push(reg);
            }
        }
        part.registrations = confirmed(part.registrations);
        planted.events = part
            .registrations
            .iter()
            .chain(&part.events)
            .cloned()
            .collect();
        self.registrations.extend(part.registrations);
        self.events.extend(part.events);
        self.planted.push(planted.clone());
        planted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_written_without_trailing_zeros() {
        assert_eq!(decimal(38000, 2), "380");
        assert_eq!(decimal(38050, 2), "380.5");
        assert_eq!(decimal(7, 3), "0.007");
    }

    #[test]
    fn generation_is_deterministic_and_ids_are_unique() {
        let mut a = Scenario::clean(7, 4, 5, 2);
        let mut b = Scenario::clean(7, 4, 5, 2);
        for p in Problem::ALL {
            a.plant(p);
            b.plant(p);
        }
        assert_eq!(a.all(), b.all());
        let mut ids = std::collections::BTreeSet::new();
        for e in a.all() {
            assert!(ids.insert(e.event_id.clone()), "duplicate {}", e.event_id);
        }
    }
}
