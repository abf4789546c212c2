//! Auditor and brand answers (DESIGN §5, issue 5): reference rules (conversion
//! bands, Fairtrade prices), certificates, mass balance, the chain-of-custody
//! report and the EUDR verdict. Pure: the store hands over events, these modules
//! answer.

pub mod certs;
pub mod prices;
pub mod rules;
