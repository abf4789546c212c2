//! lotline events → EPCIS 2.0 events and documents (docs/epcis.md, "Export").
