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
