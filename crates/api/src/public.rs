//! The public view: answers without farmers' personal data (EUDR asks for plots,
//! not people). A flag on the request for now; roles come with authentication.
//!
//! Left out: the name and GLN of every org registered as a farm, every event's
//! extension fields (free text that may hold anything) except the EPCIS event hash, the properties of a plot
//! registered as a GeoJSON Feature, and producer names in the
//! EUDR export and the chain report. Org, lot and plot ids stay: they are the
//! keys provenance is about, and co-ops should give farms ids that are not names.

use lotline_domain::geo::bare_geometry;
use lotline_proto::v1;

/// Strips personal fields from an event answered in the public view.
pub(crate) fn redact(stored: &mut v1::StoredEvent) {
    let Some(event) = stored.event.as_mut() else {
        return;
    };
    // The hash stays: it names the event and reveals nothing (it cannot be reversed).
    event
        .extensions
        .retain(|key, _| key == lotline_epcis::names::EXT_HASH);
    match event.kind.as_mut() {
        Some(v1::event::Kind::RegisterOrg(org)) if org.role == v1::OrgRole::Farm as i32 => {
            org.name.clear();
            org.gln.clear();
        }
        Some(v1::event::Kind::RegisterPlot(plot)) => plot.geometry = bare_geometry(&plot.geometry),
        _ => {}
    }
}
