//! Fairtrade price and premium checks on Pay events (DESIGN §5; domain.md §1.2:
//! Fairtrace's "early alerts for ... under-paid price/premium").
//!
//! A payment for a Fairtrade lot is compared with the Fairtrade Minimum Price
//! and Premium in force on its contract date ([`Rules::price_for`]), in the
//! rule's currency and unit. lotline knows no market prices or exchange rates:
//! it checks the floor (the minimum, plus the organic differential where one
//! applies) and the premium, and says so when a payment cannot be compared.

use rust_decimal::Decimal;

use crate::anomaly::{Anomaly, AnomalyKind};
use crate::audit::certs::{LotFacts, claims_fairtrade, claims_organic};
use crate::audit::rules::{PriceRule, Rules};
use crate::event::{Event, EventKind, Pay};
use crate::quantity::{Quantity, Unit};

/// A per-unit money figure: 4 decimal places at most, 2 at least ("1.80",
/// "1.7962", "2400.00").
fn per_unit(value: Decimal) -> String {
    let mut v = value.round_dp(4).normalize();
    if v.scale() < 2 {
        v.rescale(2);
    }
    v.to_string()
}

/// A money total: 2 decimal places ("250.00").
fn total(value: Decimal) -> String {
    let mut v = value.round_dp(2);
    v.rescale(2);
    v.to_string()
}

/// A quantity figure: 4 decimal places at most, no trailing zeros.
fn amount(value: Decimal) -> String {
    value.round_dp(4).normalize().to_string()
}

/// What is known of one paid lot against its rule.
struct Paid<'a> {
    event: &'a Event,
    pay: &'a Pay,
    lot: &'a str,
    rule: &'a PriceRule,
    /// "under a contract of 2024-02-01" or "on 2024-02-01 (no contract date given)".
    when: String,
    date: String,
}

impl Paid<'_> {
    fn anomaly(&self, kind: AnomalyKind, explanation: String) -> Anomaly {
        Anomaly::new(kind, self.lot, Some(&self.event.id), explanation)
            .org(&self.event.org)
            .figure("price_class", &self.rule.class)
            .figure("contract_date", &self.date)
    }

    /// "washed arabica lot L7".
    fn what(&self) -> String {
        format!("{} lot {}", self.rule.class_words(), self.lot)
    }
}

/// Checks a Pay event against the Fairtrade Minimum Price and Premium.
///
/// For each paid lot whose facts claim Fairtrade, the price rule is found by
/// the lot's chain (or the event's), its product and the contract date (or,
/// without one, the event date). The paid price and premium are converted from
/// the pay unit into the rule's unit (price per rule unit = price per pay unit
/// × rule unit's base factor / pay unit's base factor).
///
/// - Another currency, or units that do not convert: `PriceNotComparable`, one
///   per lot, with the reason.
/// - Price below the minimum (plus the organic differential when the lot also
///   claims organic and the rule has one): `PriceBelowMinimum`, with figures
///   price_class, contract_date, currency, unit (the rule's), minimum, paid
///   (4 dp), shortfall_per_unit, quantity (the lot's paid quantity in the rule
///   unit) and shortfall_total (2 dp; both left out when the quantity does not
///   convert), plus organic_differential when it applied.
/// - Premium (none paid counts as 0) below the rule's: `PremiumShortfall`, with
///   premium, paid_premium and the same shortfall figures.
///
/// Paying exactly the reference figure is fine. Lots without a Fairtrade
/// claim, unknown lots, and contracts with no rule in force are not checked.
/// A lot listed twice in one payment is checked once, on its summed quantity.
pub fn payment_checks(
    rules: &Rules,
    event: &Event,
    lot_info: &dyn Fn(&str) -> Option<LotFacts>,
) -> Vec<Anomaly> {
    let EventKind::Pay(pay) = &event.kind else {
        return Vec::new();
    };
    let (date, when) = match pay.contract_date {
        Some(d) => (d, format!("under a contract of {d}")),
        None => {
            let d = event.time.date_naive();
            (d, format!("on {d} (no contract date given)"))
        }
    };
    let mut lots: Vec<(&str, Vec<&Quantity>)> = Vec::new();
    for lq in &pay.lots {
        match lots.iter_mut().find(|(lot, _)| *lot == lq.lot) {
            Some((_, quantities)) => quantities.push(&lq.quantity),
            None => lots.push((&lq.lot, vec![&lq.quantity])),
        }
    }
    let mut out = Vec::new();
    for (lot, quantities) in lots {
        let Some(facts) = lot_info(lot) else {
            continue;
        };
        if !claims_fairtrade(&facts.claims) {
            continue;
        }
        let chain = facts
            .chain
            .clone()
            .or_else(|| event.chain.map(|c| c.as_str().to_string()));
        let Some(rule) = chain.and_then(|c| rules.price_for(&c, &facts.product, date)) else {
            continue;
        };
        let paid = Paid {
            event,
            pay,
            lot,
            rule,
            when: when.clone(),
            date: date.to_string(),
        };
        out.extend(check_lot(&paid, &facts, &quantities));
    }
    out
}

/// The checks for one Fairtrade lot with its rule.
fn check_lot(p: &Paid<'_>, facts: &LotFacts, quantities: &[&Quantity]) -> Vec<Anomaly> {
    let (pay, rule) = (p.pay, p.rule);
    let currency = rule.currency.trim();
    if !pay.currency.trim().eq_ignore_ascii_case(currency) {
        let reason = format!(
            "paid in {} for {} {}; the Fairtrade Minimum Price is set in {currency}, so the \
             payment cannot be checked without an exchange rate",
            pay.currency.trim(),
            p.what(),
            p.when,
        );
        return vec![not_comparable(p, reason)];
    }
    let (Some(rule_unit), Some(pay_unit)) = (Unit::parse(&rule.unit), Unit::parse(&pay.price_unit))
    else {
        let reason = format!(
            "paid per \"{}\" for {} {}; the Fairtrade Minimum Price is per \"{}\", and one of \
             the units is missing",
            pay.price_unit,
            p.what(),
            p.when,
            rule.unit
        );
        return vec![not_comparable(p, reason)];
    };
    let convert = |per_pay_unit: Decimal| -> Option<Decimal> {
        if rule_unit == pay_unit {
            return Some(per_pay_unit);
        }
        if rule_unit.dimension() != pay_unit.dimension() {
            return None;
        }
        per_pay_unit
            .checked_mul(rule_unit.base_factor())?
            .checked_div(pay_unit.base_factor())
    };
    let premium_paid = pay.premium_per_unit.unwrap_or(Decimal::ZERO);
    let (Some(price), Some(premium)) = (convert(pay.price_per_unit), convert(premium_paid)) else {
        let reason = format!(
            "paid per {pay_unit} for {} {}; the Fairtrade Minimum Price is per {rule_unit}, which \
             does not convert to {pay_unit}",
            p.what(),
            p.when,
        );
        return vec![not_comparable(p, reason)];
    };
    // The lot's paid quantity in the rule unit, when every entry converts.
    let quantity: Option<Decimal> = quantities.iter().try_fold(Decimal::ZERO, |acc, q| {
        acc.checked_add(q.amount_in(&rule_unit)?)
    });
    let money = format!("{currency}/{rule_unit}");
    let as_sent = |per_pay: Decimal, per_rule: Decimal| {
        if pay_unit == rule_unit {
            format!("{} {money}", per_unit(per_rule))
        } else {
            format!(
                "{} {}/{pay_unit} ({} {money})",
                per_unit(per_pay),
                pay.currency.trim(),
                per_unit(per_rule)
            )
        }
    };
    // "(shortfall 0.05 USD/lb, 250.00 USD on 5000 lb)".
    let shortfall_text =
        |short: Decimal, total_short: Option<Decimal>| match (total_short, quantity) {
            (Some(t), Some(q)) => format!(
                "shortfall {} {money}, {} {currency} on {} {rule_unit}",
                per_unit(short),
                total(t),
                amount(q)
            ),
            _ => format!(
                "shortfall {} {money}; the paid quantity does not convert to {rule_unit}",
                per_unit(short)
            ),
        };
    let with_shortfall = |mut a: Anomaly, short: Decimal| {
        a = a.figure("shortfall_per_unit", per_unit(short));
        if let Some(q) = quantity {
            a = a.figure("quantity", amount(q));
            if let Some(t) = short.checked_mul(q) {
                a = a.figure("shortfall_total", total(t));
            }
        }
        a
    };

    let mut out = Vec::new();
    let organic = rule
        .organic_differential
        .filter(|_| claims_organic(&facts.claims));
    let minimum = match organic {
        Some(diff) => rule.minimum.checked_add(diff).unwrap_or(Decimal::MAX),
        None => rule.minimum,
    };
    if price < minimum {
        let short = minimum - price;
        let floor = match organic {
            Some(diff) => format!(
                "the Fairtrade Minimum Price is {} {money} plus the organic differential {} \
                 {money}, {} {money} in all",
                per_unit(rule.minimum),
                per_unit(diff),
                per_unit(minimum)
            ),
            None => format!(
                "the Fairtrade Minimum Price is {} {money}",
                per_unit(minimum)
            ),
        };
        let explanation = format!(
            "paid {} for {} {}; {floor} ({})",
            as_sent(pay.price_per_unit, price),
            p.what(),
            p.when,
            shortfall_text(short, quantity.and_then(|q| short.checked_mul(q))),
        );
        let mut a = p
            .anomaly(AnomalyKind::PriceBelowMinimum, explanation)
            .figure("currency", currency)
            .figure("unit", rule_unit.symbol())
            .figure("minimum", per_unit(minimum))
            .figure("paid", per_unit(price));
        if let Some(diff) = organic {
            a = a.figure("organic_differential", per_unit(diff));
        }
        out.push(with_shortfall(a, short));
    }
    if premium < rule.premium {
        let short = rule.premium - premium;
        let paid_text = match pay.premium_per_unit {
            None => "paid no Fairtrade Premium".to_string(),
            Some(v) => format!("paid a Fairtrade Premium of {}", as_sent(v, premium)),
        };
        let explanation = format!(
            "{paid_text} for {} {}; the Fairtrade Premium is {} {money} ({})",
            p.what(),
            p.when,
            per_unit(rule.premium),
            shortfall_text(short, quantity.and_then(|q| short.checked_mul(q))),
        );
        let a = p
            .anomaly(AnomalyKind::PremiumShortfall, explanation)
            .figure("currency", currency)
            .figure("unit", rule_unit.symbol())
            .figure("premium", per_unit(rule.premium))
            .figure("paid_premium", per_unit(premium));
        out.push(with_shortfall(a, short));
    }
    out
}

fn not_comparable(p: &Paid<'_>, reason: String) -> Anomaly {
    p.anomaly(AnomalyKind::PriceNotComparable, reason.clone())
        .figure("currency", p.pay.currency.trim())
        .figure("unit", p.pay.price_unit.trim())
        .figure("rule_currency", p.rule.currency.trim())
        .figure("rule_unit", p.rule.unit.trim())
        .figure("reason", reason)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Chain, LotQuantity};
    use chrono::{DateTime, NaiveDate};
    use std::collections::BTreeMap;
    use std::str::FromStr;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    struct P<'a> {
        lot: &'a str,
        quantity: Quantity,
        currency: &'a str,
        price: &'a str,
        unit: &'a str,
        premium: Option<&'a str>,
        contract: Option<&'a str>,
    }

    const ARABICA: P<'static> = P {
        lot: "ARA",
        quantity: Quantity {
            amount: Decimal::from_parts(5000, 0, 0, false, 0),
            unit: Unit::Pound,
        },
        currency: "USD",
        price: "1.80",
        unit: "lb",
        premium: Some("0.20"),
        contract: Some("2024-02-01"),
    };

    fn pay(p: P<'_>) -> Event {
        Event {
            id: "ev-pay".into(),
            time: DateTime::parse_from_rfc3339("2024-03-10T12:00:00+03:00").unwrap(),
            org: "roaster-1".into(),
            chain: Some(Chain::Coffee),
            site: None,
            extensions: BTreeMap::new(),
            kind: EventKind::Pay(Pay {
                lots: vec![LotQuantity {
                    lot: p.lot.into(),
                    quantity: p.quantity,
                }],
                payee_org: "coop-1".into(),
                currency: p.currency.into(),
                price_per_unit: dec(p.price),
                price_unit: p.unit.into(),
                premium_per_unit: p.premium.map(dec),
                contract_date: p.contract.map(day),
            }),
        }
    }

    fn facts(lot: &str) -> Option<LotFacts> {
        let (product, claims, chain): (&str, &[&str], &str) = match lot {
            "ARA" => ("washed arabica green", &["fairtrade"], "coffee"),
            "ORG" => ("washed arabica green", &["FLOCERT", "organic"], "coffee"),
            "PLAIN" => ("washed arabica green", &["organic"], "coffee"),
            "COCOA" => ("dry cocoa beans", &["fairtrade", "organic"], "cocoa"),
            _ => return None,
        };
        Some(LotFacts {
            product: product.into(),
            claims: claims.iter().map(|c| c.to_string()).collect(),
            chain: Some(chain.into()),
        })
    }

    fn check(p: P<'_>) -> Vec<Anomaly> {
        payment_checks(&Rules::default(), &pay(p), &facts)
    }

    #[test]
    fn exactly_the_minimum_and_premium_is_fine() {
        assert!(check(ARABICA).is_empty());
    }

    #[test]
    fn a_cent_below_the_minimum_is_flagged_with_the_shortfall() {
        let found = check(P {
            price: "1.79",
            ..ARABICA
        });
        assert_eq!(found.len(), 1);
        let a = &found[0];
        assert_eq!(a.kind, AnomalyKind::PriceBelowMinimum);
        assert_eq!(a.lot, "ARA");
        assert_eq!(a.org.as_deref(), Some("roaster-1"));
        assert_eq!(a.event_id.as_deref(), Some("ev-pay"));
        let f = &a.figures;
        assert_eq!(f["price_class"], "coffee_washed_arabica");
        assert_eq!(f["contract_date"], "2024-02-01");
        assert_eq!(f["currency"], "USD");
        assert_eq!(f["unit"], "lb");
        assert_eq!(f["minimum"], "1.80");
        assert_eq!(f["paid"], "1.79");
        assert_eq!(f["shortfall_per_unit"], "0.01");
        assert_eq!(f["quantity"], "5000");
        assert_eq!(f["shortfall_total"], "50.00");
        assert_eq!(
            a.explanation,
            "paid 1.79 USD/lb for washed arabica lot ARA under a contract of 2024-02-01; the \
             Fairtrade Minimum Price is 1.80 USD/lb (shortfall 0.01 USD/lb, 50.00 USD on 5000 lb)"
        );
    }

    #[test]
    fn a_missing_premium_is_a_shortfall() {
        let found = check(P {
            premium: None,
            ..ARABICA
        });
        assert_eq!(found.len(), 1);
        let a = &found[0];
        assert_eq!(a.kind, AnomalyKind::PremiumShortfall);
        assert_eq!(a.figures["premium"], "0.20");
        assert_eq!(a.figures["paid_premium"], "0.00");
        assert_eq!(a.figures["shortfall_per_unit"], "0.20");
        assert_eq!(a.figures["shortfall_total"], "1000.00");
        assert!(
            a.explanation
                .starts_with("paid no Fairtrade Premium for washed arabica lot ARA")
        );
        let found = check(P {
            premium: Some("0.19"),
            ..ARABICA
        });
        assert_eq!(found[0].figures["shortfall_total"], "50.00");
    }

    #[test]
    fn the_organic_differential_applies_to_organic_lots() {
        let found = check(P {
            lot: "ORG",
            price: "2.19",
            ..ARABICA
        });
        assert_eq!(found.len(), 1);
        let a = &found[0];
        assert_eq!(a.kind, AnomalyKind::PriceBelowMinimum);
        assert_eq!(a.figures["minimum"], "2.20");
        assert_eq!(a.figures["organic_differential"], "0.40");
        assert!(
            a.explanation
                .contains("plus the organic differential 0.40 USD/lb, 2.20 USD/lb in all")
        );
        assert!(
            check(P {
                lot: "ORG",
                price: "2.20",
                ..ARABICA
            })
            .is_empty()
        );
    }

    #[test]
    fn a_per_kg_payment_is_converted_to_the_per_lb_rule() {
        let kg = |amount: &str| Quantity::new(dec(amount), Unit::Kilogram);
        // 1.80 USD/lb is 3.9683 USD/kg: 3.97 is above, 3.96 below.
        assert!(
            check(P {
                quantity: kg("2268"),
                price: "3.97",
                unit: "KGM",
                premium: Some("0.45"),
                ..ARABICA
            })
            .is_empty()
        );
        let found = check(P {
            quantity: kg("453.59237"),
            price: "3.96",
            unit: "kg",
            premium: Some("0.45"),
            ..ARABICA
        });
        assert_eq!(found.len(), 1);
        let a = &found[0];
        assert_eq!(a.kind, AnomalyKind::PriceBelowMinimum);
        // 3.96 × 453.59237 / 1000 = 1.7962257852 USD/lb.
        assert_eq!(a.figures["paid"], "1.7962");
        assert_eq!(a.figures["shortfall_per_unit"], "0.0038");
        assert_eq!(a.figures["quantity"], "1000");
        assert_eq!(a.figures["shortfall_total"], "3.77");
        assert!(
            a.explanation
                .starts_with("paid 3.96 USD/kg (1.7962 USD/lb) for washed arabica"),
            "{}",
            a.explanation
        );
    }

    #[test]
    fn cocoa_is_checked_per_tonne() {
        let found = payment_checks(
            &Rules::default(),
            &pay(P {
                lot: "COCOA",
                quantity: Quantity::new(dec("10000"), Unit::Kilogram),
                price: "2.35",
                unit: "kg",
                premium: Some("0.24"),
                contract: Some("2025-11-01"),
                ..ARABICA
            }),
            &facts,
        );
        assert_eq!(found.len(), 1);
        let a = &found[0];
        assert_eq!(a.figures["price_class"], "cocoa");
        assert_eq!(a.figures["unit"], "t");
        // No organic differential is known for cocoa.
        assert_eq!(a.figures["minimum"], "2400.00");
        assert_eq!(a.figures["paid"], "2350.00");
        assert_eq!(a.figures["quantity"], "10");
        assert_eq!(a.figures["shortfall_total"], "500.00");
    }

    #[test]
    fn another_currency_or_unit_is_not_comparable() {
        let found = check(P {
            currency: "EUR",
            price: "1.00",
            premium: None,
            ..ARABICA
        });
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].kind, AnomalyKind::PriceNotComparable);
        assert_eq!(found[0].figures["currency"], "EUR");
        assert_eq!(found[0].figures["rule_currency"], "USD");
        assert!(found[0].explanation.contains("exchange rate"));
        let found = check(P {
            unit: "bag",
            ..ARABICA
        });
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].kind, AnomalyKind::PriceNotComparable);
        assert!(
            found[0].explanation.contains("does not convert"),
            "{}",
            found[0].explanation
        );
        // A lowercase currency code is the same currency.
        assert!(
            check(P {
                currency: "usd",
                ..ARABICA
            })
            .is_empty()
        );
    }

    #[test]
    fn a_quantity_that_does_not_convert_leaves_out_the_total() {
        let found = check(P {
            quantity: Quantity::new(dec("10"), Unit::Piece),
            price: "1.70",
            ..ARABICA
        });
        assert_eq!(found.len(), 1);
        assert!(!found[0].figures.contains_key("quantity"));
        assert!(!found[0].figures.contains_key("shortfall_total"));
        assert!(found[0].explanation.contains("does not convert to lb"));
    }

    #[test]
    fn before_the_first_effective_date_there_is_no_rule() {
        assert!(
            check(P {
                price: "1.00",
                premium: None,
                contract: Some("2023-07-31"),
                ..ARABICA
            })
            .is_empty()
        );
        // Without a contract date the event date (2024-03-10) counts.
        let found = check(P {
            price: "1.00",
            contract: None,
            ..ARABICA
        });
        assert_eq!(found[0].figures["contract_date"], "2024-03-10");
        assert!(
            found[0]
                .explanation
                .contains("on 2024-03-10 (no contract date given)")
        );
    }

    #[test]
    fn lots_without_a_fairtrade_claim_are_not_checked() {
        for lot in ["PLAIN", "UNKNOWN"] {
            assert!(
                check(P {
                    lot,
                    price: "0.50",
                    premium: None,
                    ..ARABICA
                })
                .is_empty()
            );
        }
    }

    #[test]
    fn a_lot_listed_twice_is_checked_once_on_its_total() {
        let mut e = pay(P {
            price: "1.70",
            ..ARABICA
        });
        if let EventKind::Pay(p) = &mut e.kind {
            p.lots.push(p.lots[0].clone());
        }
        let found = payment_checks(&Rules::default(), &e, &facts);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].figures["quantity"], "10000");
        assert_eq!(found[0].figures["shortfall_total"], "1000.00");
    }
}
