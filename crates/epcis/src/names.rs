//! Names shared by import and export: the extensions an imported event keeps, lotline's EPCIS
//! extension namespace, and the URIs lotline's own ids take in an EPCIS document
//! (docs/epcis.md).

/// Extension holding the EPCIS event as the document wrote it (JSON text); for a transformation
/// joined from several records, a JSON array of the records.
pub const EXT_EVENT: &str = "epcis:event";
/// Extension holding the event's CBV 2.0 hash (joined records: the hashes, space-separated).
pub const EXT_HASH: &str = "epcis:hash";
/// Extension holding the document's `@context` (JSON text).
pub const EXT_CONTEXT: &str = "epcis:context";

/// The prefix lotline's EPCIS extension fields are written with.
pub const LOTLINE_PREFIX: &str = "lotline";
/// The namespace of lotline's EPCIS extension fields and master-data attributes.
pub const LOTLINE_NS: &str = "https://ns.lotline.dev/epcis/";
/// The EPCIS 2.0 JSON-LD context.
pub const EPCIS_CONTEXT: &str = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld";

/// URI prefixes of lotline's own ids in an EPCIS document; the rest is the id, percent-encoded.
pub const LOT_URN: &str = "urn:lotline:lot:";
pub const ORG_URN: &str = "urn:lotline:org:";
pub const SITE_URN: &str = "urn:lotline:site:";
pub const PLOT_URN: &str = "urn:lotline:plot:";
pub const EVENT_URN: &str = "urn:lotline:event:";
