//! Views: what of an answer a caller sees, applied here and nowhere else.
//!
//! The public view answers without farmers' personal data (EUDR asks for plots, not people). It
//! leaves out the name and GLN of every org registered as a farm, every event's extension fields
//! (free text that may hold anything) except the EPCIS event hash, a plot's GeoJSON properties,
//! and producer names in the EUDR export and the chain report. Org, lot and plot ids stay: they
//! are the keys provenance is about, and co-ops should give farms ids that are not names. A trace
//! forward holds nothing else (lots, products, holders' ids, quantities), so it is the same in
//! both views.

use std::collections::BTreeSet;

use lotline_domain::audit::chain::ChainReport;
use lotline_domain::geo::bare_geometry;
use lotline_domain::{Event, EventKind, OrgRole};
use lotline_epcis::names::EXT_HASH;

/// Which view of an answer a caller gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum View {
    /// Everything the log holds.
    #[default]
    Full,
    /// Without farmers' personal data.
    Public,
}

impl View {
    pub fn is_public(self) -> bool {
        self == View::Public
    }
}

/// An event as the view shows it.
pub fn event(view: View, event: &mut Event) {
    if !view.is_public() {
        return;
    }
    // The hash stays: it names the event and reveals nothing (it cannot be reversed).
    event.extensions.retain(|key, _| key == EXT_HASH);
    match &mut event.kind {
        EventKind::RegisterOrg(org) if org.role == OrgRole::Farm => {
            org.name.clear();
            org.gln = None;
        }
        EventKind::RegisterPlot(plot) => plot.geometry = bare_geometry(&plot.geometry),
        _ => {}
    }
}

/// A plot's GeoJSON as the view shows it: without its properties in the public view.
pub fn geometry(view: View, geometry: String) -> String {
    if view.is_public() {
        bare_geometry(&geometry)
    } else {
        geometry
    }
}

/// A chain report as the view shows it: no farm's name in the public view. `farms` are the
/// report's orgs registered as farms.
pub fn chain_report(view: View, report: &mut ChainReport, farms: &BTreeSet<String>) {
    if !view.is_public() {
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
        event_view(View::Public, &mut org);
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
        event_view(View::Public, &mut plot);
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
        event_view(View::Full, &mut shown);
        assert_eq!(shown, stored);
        assert_eq!(geometry(View::Full, "{}".into()), "{}");
    }

    fn event_view(view: View, e: &mut Event) {
        super::event(view, e);
    }
}
