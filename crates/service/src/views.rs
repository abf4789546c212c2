//! Views: what of an answer a caller sees, applied here and nowhere else. The caller's view is
//! decided by [`crate::access`] from its credential, never from what it asked for alone.
//!
//! - **Full**: everything the log holds (an auditor in scope; a server without access control).
//! - **Partner**: what a party sees of lots it created, held or received: without farmers'
//!   names and GLNs, free text, and other orgs' prices and payments, but with every origin
//!   plot's geometry at full precision (an EUDR due-diligence statement needs it).
//! - **Public**: the partner view with plot geometry generalised as the operator allows
//!   (`serve --public-geometry exact|rounded|region`).
//!
//! A party's own events are always shown in full, and an auditor's events in scope. The public
//! and partner views leave out the name and GLN of every org registered as a farm, every
//! event's extension fields (free text that may hold anything) except the EPCIS event hash, a
//! plot's GeoJSON properties, other orgs' Pay events (unless paid to the caller), and producer
//! names in the EUDR export and the chain report. Org, lot and plot ids stay: they are the keys
//! provenance is about, and co-ops should give farms ids that are not names. A trace forward
//! holds nothing else (lots, products, holders' ids, quantities), so it is the same in every
//! view.

use std::collections::BTreeSet;

use lotline_domain::audit::chain::ChainReport;
use lotline_domain::geo::{bare_geometry, round_geometry};
use lotline_domain::{Event, EventKind, OrgRole};
use lotline_epcis::names::EXT_HASH;

use crate::access::Scope;

/// How much of an answer a caller sees.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Without personal data, with plot geometry generalised.
    Public,
    /// Without personal data, other orgs' prices and payments; plots at full precision.
    Partner,
    /// Everything the log holds.
    #[default]
    Full,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Full => "full",
            Level::Partner => "partner",
            Level::Public => "public",
        }
    }
}

/// How the public view shows plot geometry (`serve --public-geometry`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PublicGeometry {
    /// As registered (without its GeoJSON properties).
    #[default]
    Exact,
    /// Coordinates rounded to 0.01 degrees (about 1 km).
    Rounded,
    /// No geometry: the plot's country only.
    Region,
}

impl PublicGeometry {
    pub fn parse(text: &str) -> Option<PublicGeometry> {
        match text.trim().to_ascii_lowercase().as_str() {
            "exact" => Some(PublicGeometry::Exact),
            "rounded" => Some(PublicGeometry::Rounded),
            "region" => Some(PublicGeometry::Region),
            _ => None,
        }
    }
}

/// Decimal places of a rounded public geometry.
const ROUNDED_DECIMALS: u32 = 2;

/// Which view of an answer a caller gets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct View {
    pub level: Level,
    /// The caller's org: its own events are shown in full.
    pub own: Option<String>,
    /// An auditor's scope: events inside it are shown in full.
    pub full_scope: Option<Scope>,
    /// How the public level shows geometry.
    pub geometry: PublicGeometry,
}

impl View {
    /// Everything.
    pub fn full() -> Self {
        View::default()
    }

    /// The public view, with geometry as registered (tests, and callers asking for it).
    pub fn public() -> Self {
        View {
            level: Level::Public,
            ..View::default()
        }
    }

    /// Whether personal data is left out (of answers that are not per event).
    pub fn hides_personal(&self) -> bool {
        self.level != Level::Full
    }

    /// Whether `event` is shown as stored.
    fn shows_in_full(&self, event: &Event) -> bool {
        self.level == Level::Full
            || self.own.as_deref() == Some(event.org.as_str())
            || self.full_scope.as_ref().is_some_and(|s| s.covers(event))
    }

    /// An event as the view shows it, or `None` if the view leaves it out.
    pub fn event(&self, mut event: Event) -> Option<Event> {
        if self.shows_in_full(&event) {
            return Some(event);
        }
        // The hash stays: it names the event and reveals nothing (it cannot be reversed).
        event.extensions.retain(|key, _| key == EXT_HASH);
        match &mut event.kind {
            EventKind::Pay(pay) if self.own.as_deref() != Some(pay.payee_org.as_str()) => {
                return None;
            }
            EventKind::RegisterOrg(org) if org.role == OrgRole::Farm => {
                org.name.clear();
                org.gln = None;
            }
            EventKind::RegisterPlot(plot) => {
                plot.geometry = self.geometry(std::mem::take(&mut plot.geometry));
            }
            _ => {}
        }
        Some(event)
    }

    /// A plot's GeoJSON as the view shows it: without its properties unless full, and
    /// generalised in the public view.
    pub fn geometry(&self, geometry: String) -> String {
        match (self.level, self.geometry) {
            (Level::Full, _) => geometry,
            (Level::Partner, _) | (Level::Public, PublicGeometry::Exact) => {
                bare_geometry(&geometry)
            }
            (Level::Public, PublicGeometry::Rounded) => {
                round_geometry(&bare_geometry(&geometry), ROUNDED_DECIMALS)
            }
            (Level::Public, PublicGeometry::Region) => String::new(),
        }
    }

    /// A plot's GeoJSON, registered by `owner`: shown in full to its owner.
    pub fn plot_geometry(&self, owner: &str, geometry: String) -> String {
        if self.own.as_deref() == Some(owner) {
            geometry
        } else {
            self.geometry(geometry)
        }
    }

    /// A chain report as the view shows it: no farm's name unless full. `farms` are the
    /// report's orgs registered as farms.
    pub fn chain_report(&self, report: &mut ChainReport, farms: &BTreeSet<String>) {
        if !self.hides_personal() {
            return;
        }
        let entries = report
            .stages
            .iter_mut()
            .flat_map(|s| s.entries.iter_mut())
            .chain(report.other.iter_mut());
        for entry in entries.filter(|e| farms.contains(&e.org)) {
            entry.org_name = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::DateTime;
    use lotline_domain::{RegisterOrg, RegisterPlot};

    use super::*;

    fn event(kind: EventKind) -> Event {
        Event {
            id: "e1".into(),
            time: DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap(),
            org: "farm-1".into(),
            chain: None,
            site: None,
            extensions: BTreeMap::from([
                (EXT_HASH.to_string(), "ni:///sha-256;x".to_string()),
                ("note".to_string(), "Ama's farm".to_string()),
            ]),
            kind,
        }
    }

    fn farm() -> EventKind {
        EventKind::RegisterOrg(RegisterOrg {
            name: "Ama Mensah".into(),
            role: OrgRole::Farm,
            country: "GH".into(),
            gln: Some("0614141000005".into()),
            member_of: Some("coop".into()),
            party: None,
        })
    }

    #[test]
    fn the_public_view_leaves_out_farmers_and_free_text() {
        let mut org = event(farm());
        event_view(View::public(), &mut org);
        let EventKind::RegisterOrg(reg) = &org.kind else {
            panic!("an org registration")
        };
        assert_eq!((reg.name.as_str(), reg.gln.as_deref()), ("", None));
        assert_eq!(reg.member_of.as_deref(), Some("coop"));
        assert_eq!(org.extensions.keys().collect::<Vec<_>>(), vec![EXT_HASH]);

        let geometry = r#"{"type":"Feature","properties":{"owner":"Ama"},"geometry":{"type":"Point","coordinates":[-1.5,6.7]}}"#;
        let mut plot = event(EventKind::RegisterPlot(RegisterPlot {
            plot: "p1".into(),
            geometry: geometry.into(),
            area_ha: None,
            country: "GH".into(),
        }));
        event_view(View::public(), &mut plot);
        let EventKind::RegisterPlot(p) = &plot.kind else {
            panic!("a plot registration")
        };
        assert!(!p.geometry.contains("Ama"), "{}", p.geometry);
        assert!(p.geometry.contains("-1.5"), "{}", p.geometry);
    }

    #[test]
    fn the_full_view_is_the_event_as_stored() {
        let stored = event(farm());
        let mut shown = stored.clone();
        event_view(View::full(), &mut shown);
        assert_eq!(shown, stored);
        assert_eq!(View::full().geometry("{}".into()), "{}");
    }

    #[test]
    fn partners_see_exact_plots_but_no_prices_of_others() {
        let geometry = r#"{"type":"Point","coordinates":[-1.523456,6.712345]}"#;
        let plot = event(EventKind::RegisterPlot(RegisterPlot {
            plot: "p1".into(),
            geometry: geometry.into(),
            area_ha: None,
            country: "GH".into(),
        }));
        let partner = View {
            level: Level::Partner,
            own: Some("brand".into()),
            ..View::default()
        };
        let shown = partner.event(plot.clone()).expect("shown");
        let EventKind::RegisterPlot(p) = &shown.kind else {
            panic!("a plot registration")
        };
        assert!(p.geometry.contains("-1.523456"), "{}", p.geometry);

        let rounded = View {
            geometry: PublicGeometry::Rounded,
            ..View::public()
        };
        let shown = rounded.event(plot.clone()).expect("shown");
        let EventKind::RegisterPlot(p) = &shown.kind else {
            panic!("a plot registration")
        };
        assert!(
            p.geometry.contains("-1.52") && !p.geometry.contains("-1.523"),
            "{}",
            p.geometry
        );
        let region = View {
            geometry: PublicGeometry::Region,
            ..View::public()
        };
        assert_eq!(region.geometry(geometry.into()), "");

        let pay = |payee: &str| {
            let mut e = event(EventKind::Pay(lotline_domain::Pay {
                lots: Vec::new(),
                payee_org: payee.into(),
                currency: "USD".into(),
                price_per_unit: rust_decimal::Decimal::ONE,
                price_unit: "kg".into(),
                premium_per_unit: None,
                contract_date: None,
            }));
            e.org = "trader".into();
            e
        };
        assert_eq!(partner.event(pay("farm-1")), None);
        assert!(partner.event(pay("brand")).is_some());
        // The own org's events are shown as stored.
        let mut own = pay("farm-1");
        own.org = "brand".into();
        assert_eq!(partner.event(own.clone()), Some(own));
    }

    fn event_view(view: View, e: &mut Event) {
        *e = view.event(e.clone()).expect("shown");
    }
}
