//! Auditor and brand answers (DESIGN §5, issue 5): reference rules (conversion
//! bands, Fairtrade prices), certificates, mass balance, the chain-of-custody
//! report, the EUDR verdict and export, and the anomaly listing. Pure: the store
//! hands over events, these modules answer.

pub mod balance;
pub mod certs;
pub mod chain;
pub mod eudr;
pub mod maintained;
pub mod prices;
pub mod rules;
pub mod scan;

#[cfg(test)]
mod tests;
