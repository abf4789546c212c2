//! A realistic sample of the three chains, used by `lotline demo` and tests:
//!
//! - cocoa: Dak Lak farms → co-op (aggregation, fermenting and drying) → processor
//!   (grinding) → brand (chocolate bars);
//! - coffee: Huila co-op members' cherry → wet mill → dry mill → roaster → retail lots,
//!   with one parchment lot bought from a supplier that never recorded it (unknown origin);
//! - textile: Gujarat seed cotton → ginner → spinner → weaver → dyer → cut-make-trim → brand,
//!   with one harvest recorded wrong and corrected.

use lotline_proto::build;
use lotline_proto::v1;
use lotline_proto::v1::event::Kind;

/// The lots the demo traces back (finished goods) and recalls (a farm lot), per chain.
pub const SHOWCASE: [(&str, &str, &str); 3] = [
    ("cocoa", "CC-BAR-2026-W12", "CC-H-2026-0412"),
    ("coffee", "CO-RET-2026-B", "CO-H-2026-0007"),
    ("textile", "TX-GAR-2026-T1", "TX-H-2026-0101"),
];

struct Builder {
    events: Vec<v1::Event>,
}

/// A square plot of about `side` degrees around (lon, lat), six decimals.
fn square(lon: f64, lat: f64, side: f64) -> String {
    let (a, b) = (lon, lat);
    let (c, d) = (lon + side, lat + side);
    format!(
        r#"{{"type":"Polygon","coordinates":[[[{a:.6},{b:.6}],[{c:.6},{b:.6}],[{c:.6},{d:.6}],[{a:.6},{d:.6}],[{a:.6},{b:.6}]]]}}"#
    )
}

impl Builder {
    fn push(&mut self, id: &str, time: &str, org: &str, chain: &str, site: &str, kind: Kind) {
        let mut event = build::event(id, time, org, chain, kind);
        event.site = site.into();
        self.events.push(event);
    }

    fn org(
        &mut self,
        org: &str,
        name: &str,
        role: v1::OrgRole,
        country: &str,
        gln: &str,
        member_of: &str,
    ) {
        self.push(
            &format!("reg-org-{org}"),
            "2026-01-02T09:00:00+00:00",
            org,
            "",
            "",
            Kind::RegisterOrg(v1::RegisterOrg {
                name: name.into(),
                role: role as i32,
                country: country.into(),
                gln: gln.into(),
                member_of: member_of.into(),
                party: String::new(),
            }),
        );
        // The co-op confirms its member (a farm's own word is not membership).
        if !member_of.is_empty() {
            self.push(
                &format!("member-{member_of}-{org}"),
                "2026-01-02T09:30:00+00:00",
                member_of,
                "",
                "",
                build::confirm_member(org, "2020-01-01"),
            );
        }
    }

    fn plot(&mut self, org: &str, plot: &str, geometry: String, area: &str, country: &str) {
        self.push(
            &format!("reg-plot-{plot}"),
            "2026-01-03T09:00:00+00:00",
            org,
            "",
            "",
            build::register_plot(plot, geometry, area, country),
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn harvest(
        &mut self,
        id: &str,
        time: &str,
        org: &str,
        chain: &str,
        lot: &str,
        plot: &str,
        product: &str,
        amount: &str,
    ) {
        self.push(
            id,
            time,
            org,
            chain,
            "",
            Kind::Harvest(v1::Harvest {
                lot: lot.into(),
                plot: plot.into(),
                product: product.into(),
                quantity: build::quantity(amount, "kg"),
                harvest_start: time[..10].into(),
                harvest_end: time[..10].into(),
                custody: v1::CustodyModel::IdentityPreserved as i32,
                // The textile farms grow organic Fairtrade cotton.
                claims: if chain == "textile" {
                    vec!["fairtrade".into(), "organic".into()]
                } else {
                    vec!["fairtrade".into()]
                },
            }),
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn transform(
        &mut self,
        id: &str,
        time: &str,
        org: &str,
        chain: &str,
        site: &str,
        process: &str,
        ratio: &str,
        inputs: Vec<v1::LotQuantity>,
        outputs: Vec<v1::OutputLot>,
    ) {
        self.push(
            id,
            time,
            org,
            chain,
            site,
            Kind::Transform(v1::Transform {
                inputs,
                outputs,
                process: process.into(),
                conversion_ratio: ratio.into(),
            }),
        );
    }

    /// A certificate for `org`, valid over `from..=to`.
    fn certify(
        &mut self,
        org: &str,
        standard: &str,
        certificate_id: &str,
        products: &[&str],
        from: &str,
        to: &str,
    ) {
        self.push(
            &format!("cert-{org}-{standard}"),
            "2026-01-02T10:00:00+00:00",
            org,
            "",
            "",
            Kind::Certify(v1::Certify {
                standard: standard.into(),
                certificate_id: certificate_id.into(),
                products: products.iter().map(|p| p.to_string()).collect(),
                valid_from: from.into(),
                valid_to: to.into(),
                outcome: "certified".into(),
                ..Default::default()
            }),
        );
    }

    /// Adds a business document to an event already built (a Ship or Receive).
    fn document(&mut self, event_id: &str, kind: &str, id: &str) {
        let doc = v1::BusinessDocument {
            r#type: kind.into(),
            id: id.into(),
        };
        for e in self.events.iter_mut().filter(|e| e.event_id == event_id) {
            match e.kind.as_mut() {
                Some(Kind::Ship(s)) => s.documents.push(doc.clone()),
                Some(Kind::Receive(r)) => r.documents.push(doc.clone()),
                _ => {}
            }
        }
    }

    /// A shipment and its receipt.
    #[allow(clippy::too_many_arguments)]
    fn hand_over(
        &mut self,
        id: &str,
        time: &str,
        from: &str,
        to: &str,
        chain: &str,
        lots: Vec<v1::LotQuantity>,
        doc: &str,
    ) {
        let documents = vec![v1::BusinessDocument {
            r#type: "desadv".into(),
            id: doc.into(),
        }];
        self.push(
            &format!("{id}-ship"),
            time,
            from,
            chain,
            "",
            Kind::Ship(v1::Ship {
                lots: lots.clone(),
                to_org: to.into(),
                documents: documents.clone(),
            }),
        );
        self.push(
            &format!("{id}-recv"),
            time,
            to,
            chain,
            "",
            Kind::Receive(v1::Receive {
                lots,
                from_org: from.into(),
                documents,
            }),
        );
    }
}

/// The sample events, in an order that a real deployment could see them
/// (master data first).
pub fn sample_events() -> Vec<v1::Event> {
    use v1::OrgRole as R;
    let mut b = Builder { events: Vec::new() };

    // Cocoa, Dak Lak (Vietnam).
    b.org(
        "vn-coop-eahleo",
        "Ea H'Leo Cocoa Co-operative",
        R::Cooperative,
        "VN",
        "8930000000017",
        "",
    );
    for (n, farm) in ["vn-farm-hoa", "vn-farm-binh", "vn-farm-lan"]
        .iter()
        .enumerate()
    {
        b.org(
            farm,
            &format!("Dak Lak smallholder {}", n + 1),
            R::Farm,
            "VN",
            "",
            "vn-coop-eahleo",
        );
        b.plot(
            farm,
            &format!("VN-DL-P{}", n + 1),
            square(108.051234 + n as f64 * 0.01, 12.671234, 0.002),
            "1.8",
            "VN",
        );
    }
    b.org(
        "vn-proc-grind",
        "Saigon Cocoa Processing",
        R::Processor,
        "VN",
        "8930000000024",
        "",
    );
    b.org(
        "eu-brand-choco",
        "Noord Chocolade B.V.",
        R::Brand,
        "NL",
        "8712345000010",
        "",
    );
    // Fairtrade traders and licensees along the chain: the processor holds a
    // trader certificate, the brand a licence.
    b.certify(
        "vn-proc-grind",
        "fairtrade",
        "FLO-ID 51001",
        &["cocoa"],
        "2025-06-01",
        "2028-05-31",
    );
    b.certify(
        "eu-brand-choco",
        "fairtrade",
        "FLO-LIC 7731",
        &["cocoa"],
        "2025-01-01",
        "2027-12-31",
    );
    b.push(
        "cert-ft-eahleo-2026",
        "2026-01-05T10:00:00+07:00",
        "vn-coop-eahleo",
        "cocoa",
        "",
        Kind::Certify(v1::Certify {
            standard: "fairtrade-spo".into(),
            certificate_id: "FLO-ID 41234".into(),
            products: vec!["cocoa".into()],
            valid_from: "2026-01-01".into(),
            valid_to: "2028-12-31".into(),
            outcome: "certified".into(),
            ..Default::default()
        }),
    );
    b.harvest(
        "cc-h-0412",
        "2026-03-04T07:30:00+07:00",
        "vn-farm-hoa",
        "cocoa",
        "CC-H-2026-0412",
        "VN-DL-P1",
        "wet cocoa beans",
        "420",
    );
    b.harvest(
        "cc-h-0413",
        "2026-03-04T08:10:00+07:00",
        "vn-farm-binh",
        "cocoa",
        "CC-H-2026-0413",
        "VN-DL-P2",
        "wet cocoa beans",
        "510",
    );
    b.harvest(
        "cc-h-0415",
        "2026-03-05T07:45:00+07:00",
        "vn-farm-lan",
        "cocoa",
        "CC-H-2026-0415",
        "VN-DL-P3",
        "wet cocoa beans",
        "320",
    );
    for (farm, lot, kg) in [
        ("vn-farm-hoa", "CC-H-2026-0412", "420"),
        ("vn-farm-binh", "CC-H-2026-0413", "510"),
        ("vn-farm-lan", "CC-H-2026-0415", "320"),
    ] {
        b.hand_over(
            &format!("cc-deliver-{lot}"),
            "2026-03-05T16:00:00+07:00",
            farm,
            "vn-coop-eahleo",
            "cocoa",
            vec![build::lot_quantity(lot, kg, "kg")],
            &format!("GRN-{lot}"),
        );
        b.push(
            &format!("cc-pay-{lot}"),
            "2026-03-06T10:00:00+07:00",
            "vn-coop-eahleo",
            "cocoa",
            "",
            Kind::Pay(v1::Pay {
                lots: vec![build::lot_quantity(lot, kg, "kg")],
                payee_org: farm.to_string(),
                currency: "USD".into(),
                price_per_unit: "2.95".into(),
                price_unit: "kg".into(),
                premium_per_unit: "0.24".into(),
                contract_date: "2026-03-01".into(),
            }),
        );
    }
    b.transform(
        "cc-agg-01",
        "2026-03-06T08:00:00+07:00",
        "vn-coop-eahleo",
        "cocoa",
        "eahleo-ferm",
        "aggregation",
        "1",
        vec![
            build::lot_quantity("CC-H-2026-0412", "420", "kg"),
            build::lot_quantity("CC-H-2026-0413", "510", "kg"),
            build::lot_quantity("CC-H-2026-0415", "320", "kg"),
        ],
        vec![build::output(
            "CC-COOP-WET-01",
            "wet cocoa beans",
            "1250",
            "kg",
            &["fairtrade"],
        )],
    );
    b.transform(
        "cc-dry-01",
        "2026-03-13T17:00:00+07:00",
        "vn-coop-eahleo",
        "cocoa",
        "eahleo-ferm",
        "fermenting_drying",
        "0.40",
        vec![build::lot_quantity("CC-COOP-WET-01", "1250", "kg")],
        vec![build::output(
            "CC-COOP-DRY-01",
            "dry cocoa beans",
            "475",
            "kg",
            &["fairtrade"],
        )],
    );
    b.hand_over(
        "cc-sale-01",
        "2026-03-20T09:00:00+07:00",
        "vn-coop-eahleo",
        "vn-proc-grind",
        "cocoa",
        vec![build::lot_quantity("CC-COOP-DRY-01", "475", "kg")],
        "INV-EHL-2026-031",
    );
    b.transform(
        "cc-grind-01",
        "2026-03-25T14:00:00+07:00",
        "vn-proc-grind",
        "cocoa",
        "hcmc-plant",
        "roasting_grinding",
        "0.82",
        vec![build::lot_quantity("CC-COOP-DRY-01", "475", "kg")],
        vec![build::output(
            "CC-LIQ-2026-07",
            "cocoa liquor",
            "380",
            "kg",
            &["fairtrade"],
        )],
    );
    b.hand_over(
        "cc-export-01",
        "2026-04-10T09:00:00+07:00",
        "vn-proc-grind",
        "eu-brand-choco",
        "cocoa",
        vec![build::lot_quantity("CC-LIQ-2026-07", "380", "kg")],
        "BOL-HCM-RTM-5521",
    );
    b.transform(
        "cc-bar-01",
        "2026-05-12T11:00:00+02:00",
        "eu-brand-choco",
        "cocoa",
        "zaandam",
        "manufacturing",
        "",
        vec![build::lot_quantity("CC-LIQ-2026-07", "380", "kg")],
        vec![build::output(
            "CC-BAR-2026-W12",
            "dark chocolate bar 100 g 70%",
            "5200",
            "pcs",
            &["fairtrade"],
        )],
    );

    // Coffee, Huila (Colombia).
    b.org(
        "co-coop-huila",
        "Cooperativa Cafetera del Sur del Huila",
        R::Cooperative,
        "CO",
        "7700000000015",
        "",
    );
    for n in 1..=3 {
        let farm = format!("co-farm-{n:02}");
        b.org(
            &farm,
            &format!("Finca {n} Pitalito"),
            R::Farm,
            "CO",
            "",
            "co-coop-huila",
        );
        b.plot(
            &farm,
            &format!("CO-HU-P{n}"),
            format!(
                r#"{{"type":"Point","coordinates":[{:.6},1.853411]}}"#,
                -76.047311 + n as f64 * 0.004
            ),
            "2.5",
            "CO",
        );
    }
    b.org(
        "co-drymill",
        "Trilladora Pitalito",
        R::Processor,
        "CO",
        "7700000000022",
        "",
    );
    b.org(
        "de-roaster",
        "Hafen Rösterei GmbH",
        R::Manufacturer,
        "DE",
        "4012345000016",
        "",
    );
    b.org(
        "de-retail",
        "Kaffeehaus Handel AG",
        R::Retailer,
        "DE",
        "4012345000023",
        "",
    );
    b.certify(
        "co-coop-huila",
        "fairtrade",
        "FLO-ID 30512",
        &["coffee"],
        "2025-03-01",
        "2028-02-29",
    );
    b.certify(
        "co-drymill",
        "fairtrade",
        "FLO-ID 30877",
        &["coffee"],
        "2025-03-01",
        "2028-02-29",
    );
    b.certify(
        "de-roaster",
        "fairtrade",
        "FLO-LIC 2214",
        &["coffee"],
        "2024-09-01",
        "2027-08-31",
    );
    // The retailer's licence ran out before the roaster's delivery: an auditor
    // finds the sale to it flagged.
    b.certify(
        "de-retail",
        "fairtrade",
        "FLO-LIC 1180",
        &["coffee"],
        "2023-06-01",
        "2026-05-31",
    );
    let cherry = [
        ("CO-H-2026-0007", "co-farm-01", "CO-HU-P1", "600"),
        ("CO-H-2026-0008", "co-farm-02", "CO-HU-P2", "450"),
        ("CO-H-2026-0009", "co-farm-03", "CO-HU-P3", "800"),
    ];
    for (lot, farm, plot, kg) in cherry {
        b.harvest(
            &format!("co-h-{lot}"),
            "2026-04-14T06:30:00-05:00",
            farm,
            "coffee",
            lot,
            plot,
            "coffee cherry",
            kg,
        );
        b.hand_over(
            &format!("co-deliver-{lot}"),
            "2026-04-14T15:00:00-05:00",
            farm,
            "co-coop-huila",
            "coffee",
            vec![build::lot_quantity(lot, kg, "kg")],
            &format!("REC-{lot}"),
        );
    }
    b.transform(
        "co-wetmill-01",
        "2026-04-16T18:00:00-05:00",
        "co-coop-huila",
        "coffee",
        "huila-wetmill",
        "wet_milling",
        "0.21",
        vec![
            build::lot_quantity("CO-H-2026-0007", "600", "kg"),
            build::lot_quantity("CO-H-2026-0008", "450", "kg"),
            build::lot_quantity("CO-H-2026-0009", "800", "kg"),
        ],
        vec![build::output(
            "CO-PARCH-2026-14",
            "parchment coffee",
            "370",
            "kg",
            &["fairtrade"],
        )],
    );
    b.hand_over(
        "co-sale-01",
        "2026-04-28T09:00:00-05:00",
        "co-coop-huila",
        "co-drymill",
        "coffee",
        vec![build::lot_quantity("CO-PARCH-2026-14", "370", "kg")],
        "FAC-2026-0442",
    );
    // The dry mill blends in parchment from a supplier that never posted its lot.
    b.transform(
        "co-drymill-01",
        "2026-05-02T10:00:00-05:00",
        "co-drymill",
        "coffee",
        "pitalito-trilla",
        "dry_milling",
        "0.80",
        vec![
            build::lot_quantity("CO-PARCH-2026-14", "370", "kg"),
            build::lot_quantity("CO-PARCH-EXT-77", "130", "kg"),
        ],
        vec![build::output(
            "CO-GRN-2026-031",
            "green coffee excelso",
            "400",
            "kg",
            &["fairtrade"],
        )],
    );
    b.hand_over(
        "co-export-01",
        "2026-06-01T09:00:00-05:00",
        "co-drymill",
        "de-roaster",
        "coffee",
        vec![build::lot_quantity("CO-GRN-2026-031", "400", "kg")],
        "BOL-BUN-HAM-2231",
    );
    b.transform(
        "co-roast-01",
        "2026-06-20T08:00:00+02:00",
        "de-roaster",
        "coffee",
        "hamburg-roastery",
        "roasting",
        "0.84",
        vec![build::lot_quantity("CO-GRN-2026-031", "400", "kg")],
        vec![
            build::output(
                "CO-RET-2026-A",
                "roasted whole bean 1 kg",
                "200",
                "kg",
                &["fairtrade"],
            ),
            build::output(
                "CO-RET-2026-B",
                "roasted ground 250 g",
                "134",
                "kg",
                &["fairtrade"],
            ),
        ],
    );
    b.hand_over(
        "co-retail-01",
        "2026-06-25T08:00:00+02:00",
        "de-roaster",
        "de-retail",
        "coffee",
        vec![build::lot_quantity("CO-RET-2026-B", "134", "kg")],
        "LS-2026-7781",
    );

    // Textile, Gujarat (India) to a European brand.
    b.org(
        "in-ginner-rajkot",
        "Saurashtra Ginning Works",
        R::Processor,
        "IN",
        "8901234000012",
        "",
    );
    for n in 1..=2 {
        let farm = format!("in-farm-{n:02}");
        b.org(
            &farm,
            &format!("Organic cotton farmer {n}, Amreli"),
            R::Farm,
            "IN",
            "",
            "",
        );
        b.plot(
            &farm,
            &format!("IN-GJ-P{n}"),
            square(71.201234 + n as f64 * 0.01, 21.601234, 0.003),
            "3.2",
            "IN",
        );
    }
    b.org(
        "in-spinner",
        "Ahmedabad Spinning Mills",
        R::Processor,
        "IN",
        "8901234000029",
        "",
    );
    b.org(
        "in-weaver",
        "Surat Weaving Co.",
        R::Processor,
        "IN",
        "8901234000036",
        "",
    );
    b.org(
        "in-dyer",
        "Tiruppur Dye House",
        R::Processor,
        "IN",
        "8901234000043",
        "",
    );
    b.org(
        "bd-cmt",
        "Dhaka Garment Makers Ltd",
        R::Manufacturer,
        "BD",
        "8801234000019",
        "",
    );
    b.org(
        "eu-brand-wear",
        "Nordic Basics AB",
        R::Brand,
        "SE",
        "7312345000017",
        "",
    );
    for (n, org) in [
        "in-farm-01",
        "in-farm-02",
        "in-ginner-rajkot",
        "in-spinner",
        "in-weaver",
        "bd-cmt",
        "eu-brand-wear",
    ]
    .iter()
    .enumerate()
    {
        let standard = if org.starts_with("in-farm") {
            "fairtrade"
        } else {
            "gots"
        };
        b.certify(
            org,
            standard,
            &format!("CU-{}", 824_100 + n),
            &["cotton"],
            "2025-07-01",
            "2027-06-30",
        );
        if org.starts_with("in-farm") {
            b.certify(
                org,
                "organic",
                &format!("NPOP-{}", 5_100 + n),
                &["cotton"],
                "2025-07-01",
                "2027-06-30",
            );
        }
    }
    // The ginner buys Fairtrade seed cotton: it holds a Fairtrade certificate too.
    b.certify(
        "in-ginner-rajkot",
        "fairtrade",
        "FLO-ID 44021",
        &["cotton"],
        "2025-07-01",
        "2027-06-30",
    );
    // The dye house's GOTS certificate lapsed a week before it dyed the fabric.
    b.certify(
        "in-dyer",
        "gots",
        "CU-824199",
        &["cotton"],
        "2025-11-01",
        "2026-11-07",
    );
    // Recorded with a typo (4100 kg), corrected, then recorded right.
    b.harvest(
        "tx-h-0101-typo",
        "2026-10-20T08:00:00+05:30",
        "in-farm-01",
        "textile",
        "TX-H-2026-0101",
        "IN-GJ-P1",
        "seed cotton",
        "4100",
    );
    b.push(
        "tx-correct-0101",
        "2026-10-21T09:00:00+05:30",
        "in-farm-01",
        "textile",
        "",
        Kind::Correct(v1::Correct {
            corrected_event_id: "tx-h-0101-typo".into(),
            reason: "quantity typed as 4100 kg; the weighbridge ticket says 1400 kg".into(),
            corrective_event_ids: vec!["tx-h-0101".into()],
        }),
    );
    b.harvest(
        "tx-h-0101",
        "2026-10-20T08:00:00+05:30",
        "in-farm-01",
        "textile",
        "TX-H-2026-0101",
        "IN-GJ-P1",
        "seed cotton",
        "1400",
    );
    b.harvest(
        "tx-h-0102",
        "2026-10-22T08:00:00+05:30",
        "in-farm-02",
        "textile",
        "TX-H-2026-0102",
        "IN-GJ-P2",
        "seed cotton",
        "1600",
    );
    for (farm, lot, kg) in [
        ("in-farm-01", "TX-H-2026-0101", "1400"),
        ("in-farm-02", "TX-H-2026-0102", "1600"),
    ] {
        b.hand_over(
            &format!("tx-deliver-{lot}"),
            "2026-10-23T12:00:00+05:30",
            farm,
            "in-ginner-rajkot",
            "textile",
            vec![build::lot_quantity(lot, kg, "kg")],
            &format!("WB-{lot}"),
        );
    }
    b.transform(
        "tx-gin-01",
        "2026-10-25T18:00:00+05:30",
        "in-ginner-rajkot",
        "textile",
        "rajkot-gin",
        "ginning",
        "1",
        vec![
            build::lot_quantity("TX-H-2026-0101", "1400", "kg"),
            build::lot_quantity("TX-H-2026-0102", "1600", "kg"),
        ],
        vec![
            build::output("TX-LINT-2026-88", "cotton lint", "1050", "kg", &["organic"]),
            build::output("TX-SEED-2026-88", "cotton seed", "1650", "kg", &[]),
        ],
    );
    b.hand_over(
        "tx-lint-sale",
        "2026-10-28T09:00:00+05:30",
        "in-ginner-rajkot",
        "in-spinner",
        "textile",
        vec![build::lot_quantity("TX-LINT-2026-88", "1050", "kg")],
        "INV-SGW-8812",
    );
    b.transform(
        "tx-spin-01",
        "2026-11-03T17:00:00+05:30",
        "in-spinner",
        "textile",
        "ahmedabad-mill",
        "spinning",
        "0.90",
        vec![build::lot_quantity("TX-LINT-2026-88", "1050", "kg")],
        vec![build::output(
            "TX-YARN-2026-30S",
            "30s combed yarn",
            "880",
            "kg",
            &["organic"],
        )],
    );
    b.hand_over(
        "tx-yarn-sale",
        "2026-11-05T09:00:00+05:30",
        "in-spinner",
        "in-weaver",
        "textile",
        vec![build::lot_quantity("TX-YARN-2026-30S", "880", "kg")],
        "INV-ASM-1204",
    );
    b.transform(
        "tx-knit-01",
        "2026-11-09T17:00:00+05:30",
        "in-weaver",
        "textile",
        "surat-looms",
        "knitting",
        "0.97",
        vec![build::lot_quantity("TX-YARN-2026-30S", "880", "kg")],
        vec![build::output(
            "TX-FAB-2026-J1",
            "single jersey greige",
            "850",
            "kg",
            &["organic"],
        )],
    );
    b.hand_over(
        "tx-fab-sale",
        "2026-11-11T09:00:00+05:30",
        "in-weaver",
        "in-dyer",
        "textile",
        vec![build::lot_quantity("TX-FAB-2026-J1", "850", "kg")],
        "DC-SWC-3310",
    );
    b.transform(
        "tx-dye-01",
        "2026-11-14T17:00:00+05:30",
        "in-dyer",
        "textile",
        "tiruppur-dyehouse",
        "dyeing",
        "0.95",
        vec![build::lot_quantity("TX-FAB-2026-J1", "850", "kg")],
        vec![build::output(
            "TX-FAB-2026-J1-NAVY",
            "single jersey dyed navy",
            "800",
            "kg",
            &["organic"],
        )],
    );
    b.hand_over(
        "tx-dyed-sale",
        "2026-11-16T09:00:00+05:30",
        "in-dyer",
        "bd-cmt",
        "textile",
        vec![build::lot_quantity("TX-FAB-2026-J1-NAVY", "800", "kg")],
        "BOL-TUT-CGP-0981",
    );
    b.transform(
        "tx-cmt-01",
        "2026-11-19T17:00:00+06:00",
        "bd-cmt",
        "textile",
        "dhaka-factory",
        "cut_make_trim",
        "",
        vec![build::lot_quantity("TX-FAB-2026-J1-NAVY", "800", "kg")],
        vec![build::output(
            "TX-GAR-2026-T1",
            "crew-neck t-shirt navy",
            "4000",
            "pcs",
            &["organic"],
        )],
    );
    b.hand_over(
        "tx-garment-sale",
        "2026-11-20T09:00:00+06:00",
        "bd-cmt",
        "eu-brand-wear",
        "textile",
        vec![build::lot_quantity("TX-GAR-2026-T1", "4000", "pcs")],
        "BOL-CGP-GOT-7716",
    );
    // The processor files the EUDR due-diligence statement when the liquor is
    // exported to the EU; every downstream lot carries its reference.
    b.document("cc-export-01-ship", "dds", "26NLQ8XK2P7W1");
    b.document("cc-export-01-ship", "dds_verification", "VX4T9MQA");
    b.events
}

#[cfg(test)]
mod tests {
    use super::*;
    use lotline_domain::validate;
    use lotline_proto::convert::event_from_wire;

    #[test]
    fn every_sample_event_is_valid_and_unique() {
        let events = sample_events();
        let mut ids = std::collections::HashSet::new();
        for e in &events {
            let domain = event_from_wire(e).unwrap_or_else(|err| panic!("{}: {err}", e.event_id));
            validate(&domain).unwrap_or_else(|err| panic!("{}: {err}", e.event_id));
            assert!(
                ids.insert(e.event_id.clone()),
                "duplicate id {}",
                e.event_id
            );
        }
        assert!(events.len() > 60);
    }
}
