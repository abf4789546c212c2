//! Exact quantities: a decimal amount and a unit. Never floats, so that balances
//! add up to the gram.

use std::fmt;

use rust_decimal::Decimal;

/// What a unit measures; amounts convert only within one dimension.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dimension {
    Mass,
    Length,
    Volume,
    Count,
    /// A unit lotline does not know; it converts only to itself.
    Other(String),
}

/// A unit of measure. Known units convert within their dimension; any other
/// unit is kept verbatim and compares only with itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Unit {
    Gram,
    Kilogram,
    Tonne,
    Pound,
    Millimetre,
    Centimetre,
    Metre,
    Millilitre,
    Litre,
    Piece,
    Other(String),
}

impl Unit {
    /// Parses a common symbol or a UNECE Rec 20 code (case-insensitive for known units).
    /// Returns `None` for an empty string.
    pub fn parse(s: &str) -> Option<Unit> {
        let t = s.trim();
        if t.is_empty() {
            return None;
        }
        let unit = match t.to_ascii_lowercase().as_str() {
            "g" | "grm" | "gram" | "grams" => Unit::Gram,
            "kg" | "kgm" | "kilogram" | "kilograms" => Unit::Kilogram,
            "t" | "tne" | "tonne" | "tonnes" | "mt" => Unit::Tonne,
            "lb" | "lbr" | "lbs" | "pound" | "pounds" => Unit::Pound,
            "mm" | "mmt" => Unit::Millimetre,
            "cm" | "cmt" => Unit::Centimetre,
            "m" | "mtr" | "metre" | "metres" | "meter" | "meters" => Unit::Metre,
            "ml" | "mlt" => Unit::Millilitre,
            "l" | "ltr" | "litre" | "litres" | "liter" | "liters" => Unit::Litre,
            "pcs" | "pc" | "piece" | "pieces" | "h87" | "c62" | "ea" | "each" => Unit::Piece,
            _ => Unit::Other(t.to_string()),
        };
        Some(unit)
    }

    /// The canonical symbol, as lotline writes it back.
    pub fn symbol(&self) -> &str {
        match self {
            Unit::Gram => "g",
            Unit::Kilogram => "kg",
            Unit::Tonne => "t",
            Unit::Pound => "lb",
            Unit::Millimetre => "mm",
            Unit::Centimetre => "cm",
            Unit::Metre => "m",
            Unit::Millilitre => "ml",
            Unit::Litre => "l",
            Unit::Piece => "pcs",
            Unit::Other(s) => s,
        }
    }

    pub fn dimension(&self) -> Dimension {
        match self {
            Unit::Gram | Unit::Kilogram | Unit::Tonne | Unit::Pound => Dimension::Mass,
            Unit::Millimetre | Unit::Centimetre | Unit::Metre => Dimension::Length,
            Unit::Millilitre | Unit::Litre => Dimension::Volume,
            Unit::Piece => Dimension::Count,
            Unit::Other(s) => Dimension::Other(s.clone()),
        }
    }

    /// How many base units (g, mm, ml, pieces) one of this unit is. Exact.
    pub fn base_factor(&self) -> Decimal {
        match self {
            Unit::Gram | Unit::Millimetre | Unit::Millilitre | Unit::Piece | Unit::Other(_) => {
                Decimal::ONE
            }
            Unit::Kilogram | Unit::Metre | Unit::Litre => Decimal::from(1000),
            Unit::Tonne => Decimal::from(1_000_000),
            // The international avoirdupois pound is exactly 453.59237 g.
            Unit::Pound => Decimal::new(45_359_237, 5),
            Unit::Centimetre => Decimal::from(10),
        }
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

/// An exact amount in a unit.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Quantity {
    pub amount: Decimal,
    pub unit: Unit,
}

impl Quantity {
    pub fn new(amount: Decimal, unit: Unit) -> Self {
        Quantity { amount, unit }
    }

    pub fn zero(unit: Unit) -> Self {
        Quantity {
            amount: Decimal::ZERO,
            unit,
        }
    }

    /// This amount expressed in `unit`, or `None` when the dimensions differ.
    pub fn amount_in(&self, unit: &Unit) -> Option<Decimal> {
        if self.unit == *unit {
            return Some(self.amount);
        }
        if self.unit.dimension() != unit.dimension() {
            return None;
        }
        self.amount
            .checked_mul(self.unit.base_factor())?
            .checked_div(unit.base_factor())
    }

    /// This amount in the base unit of its dimension (g, mm, ml, pieces), or
    /// `None` if it does not fit a decimal.
    pub fn base_amount(&self) -> Option<Decimal> {
        self.amount.checked_mul(self.unit.base_factor())
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount.normalize(), self.unit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn parses_symbols_and_unece_codes() {
        assert_eq!(Unit::parse("KGM"), Some(Unit::Kilogram));
        assert_eq!(Unit::parse("kg"), Some(Unit::Kilogram));
        assert_eq!(Unit::parse("H87"), Some(Unit::Piece));
        assert_eq!(Unit::parse("bale"), Some(Unit::Other("bale".into())));
        assert_eq!(Unit::parse("  "), None);
    }

    #[test]
    fn converts_exactly_within_a_dimension() {
        let q = Quantity::new(d("1.5"), Unit::Tonne);
        assert_eq!(q.amount_in(&Unit::Kilogram), Some(d("1500")));
        let lb = Quantity::new(d("1"), Unit::Pound);
        assert_eq!(lb.amount_in(&Unit::Gram), Some(d("453.59237")));
        assert_eq!(lb.amount_in(&Unit::Metre), None);
        let bale = Quantity::new(d("2"), Unit::Other("bale".into()));
        assert_eq!(bale.amount_in(&Unit::Other("bale".into())), Some(d("2")));
        assert_eq!(bale.amount_in(&Unit::Other("sack".into())), None);
    }
}
