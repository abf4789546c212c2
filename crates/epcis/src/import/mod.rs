//! EPCIS documents → lotline events (docs/epcis.md, "Master data" and "Events").
