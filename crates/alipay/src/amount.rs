//! Money as integer fen, parsed strictly from and formatted back to Alipay's
//! `"88.88"` yuan strings. A float never appears.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{AmountProblem, Error, Result};

/// An amount of money in fen (1/100 yuan).
///
/// Parsing accepts `"88"`, `"88.8"` and `"88.88"` (Alipay answers always use
/// two decimals; merchants sometimes send fewer) and nothing else: no sign,
/// no exponent, no spaces, no leading `.`, no thousands separators.
/// Formatting always writes two decimals.
///
/// `Amount` itself allows zero (Alipay reports `"0.00"` for
/// `point_amount`, `refund_fee`, …); [`Amount::payable`] and the request
/// types enforce the payable range `0.01 ..= 100000000.00`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Amount(u64);

impl Amount {
    /// Zero.
    pub const ZERO: Amount = Amount(0);
    /// The smallest payable amount, 0.01.
    pub const MIN_PAYABLE: Amount = Amount(1);
    /// The largest amount Alipay accepts on a trade, 100000000.00.
    pub const MAX: Amount = Amount(10_000_000_000);

    /// An amount from fen. Fails above [`Amount::MAX`].
    ///
    /// # Errors
    /// [`Error::Amount`] when out of range.
    pub fn from_fen(fen: u64) -> Result<Self> {
        if fen > Self::MAX.0 {
            return Err(Error::Amount {
                input: fen.to_string(),
                problem: AmountProblem::OutOfRange,
            });
        }
        Ok(Amount(fen))
    }

    /// The value in fen.
    pub const fn fen(self) -> u64 {
        self.0
    }

    /// Parses a yuan string strictly (see the type docs); zero is allowed.
    ///
    /// # Errors
    /// [`Error::Amount`] with the reason.
    pub fn parse(s: &str) -> Result<Self> {
        let err = |problem| Error::Amount {
            input: s.chars().take(32).collect(),
            problem,
        };
        let (int, frac) = match s.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (s, None),
        };
        if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err(AmountProblem::Syntax));
        }
        // "007.00" is not something Alipay or a sane merchant writes.
        if int.len() > 1 && int.starts_with('0') {
            return Err(err(AmountProblem::Syntax));
        }
        let frac_fen = match frac {
            None => 0,
            Some(f) if f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()) => {
                return Err(err(AmountProblem::Syntax));
            }
            Some(f) if f.len() > 2 => return Err(err(AmountProblem::TooManyDecimals)),
            Some(f) => {
                let v: u64 = f.parse().map_err(|_| err(AmountProblem::Syntax))?;
                if f.len() == 1 { v * 10 } else { v }
            }
        };
        // 9 integer digits is already above MAX; refusing longer input early
        // also keeps the multiplication below from overflowing.
        if int.len() > 9 {
            return Err(err(AmountProblem::OutOfRange));
        }
        let yuan: u64 = int.parse().map_err(|_| err(AmountProblem::Syntax))?;
        let fen = yuan * 100 + frac_fen;
        if fen > Self::MAX.0 {
            return Err(err(AmountProblem::OutOfRange));
        }
        Ok(Amount(fen))
    }

    /// Parses a yuan string and requires a payable amount (≥ 0.01).
    ///
    /// # Errors
    /// [`Error::Amount`] when malformed or zero.
    pub fn payable(s: &str) -> Result<Self> {
        let a = Self::parse(s)?;
        a.require_payable()?;
        Ok(a)
    }

    /// Fails when this amount is zero (not payable, not refundable).
    ///
    /// # Errors
    /// [`Error::Amount`] with [`AmountProblem::OutOfRange`].
    pub fn require_payable(self) -> Result<()> {
        if self.0 == 0 {
            return Err(Error::Amount {
                input: self.to_string(),
                problem: AmountProblem::OutOfRange,
            });
        }
        Ok(())
    }

    /// `self + other`, or `None` past [`Amount::MAX`].
    pub fn checked_add(self, other: Amount) -> Option<Amount> {
        let v = self.0.checked_add(other.0)?;
        (v <= Self::MAX.0).then_some(Amount(v))
    }

    /// `self - other`, or `None` below zero.
    pub fn checked_sub(self, other: Amount) -> Option<Amount> {
        self.0.checked_sub(other.0).map(Amount)
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

impl FromStr for Amount {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Amount::parse(s)
    }
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        // Alipay always sends amounts as JSON strings; a JSON number would mean
        // a float went over the wire somewhere, which we refuse.
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Amount::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_formats() {
        for (s, fen, back) in [
            ("88.88", 8888, "88.88"),
            ("0.01", 1, "0.01"),
            ("0.10", 10, "0.10"),
            ("0.1", 10, "0.10"),
            ("1", 100, "1.00"),
            ("0", 0, "0.00"),
            ("0.00", 0, "0.00"),
            ("100000000.00", 10_000_000_000, "100000000.00"),
        ] {
            let a = Amount::parse(s).unwrap();
            assert_eq!(a.fen(), fen, "{s}");
            assert_eq!(a.to_string(), back);
        }
    }

    #[test]
    fn rejects_malformed() {
        for s in [
            "",
            ".",
            "1.",
            ".5",
            "-1",
            "+1",
            "1e2",
            "1.001",
            "1,00",
            " 1",
            "1 ",
            "01",
            "00.10",
            "100000000.01",
            "999999999",
            "NaN",
            "1.0.0",
            "١",
            "1_0",
            "0x10",
            "1.-1",
        ] {
            assert!(Amount::parse(s).is_err(), "{s:?} should be rejected");
        }
        assert!(Amount::payable("0.00").is_err());
        assert!(Amount::payable("0.01").is_ok());
    }

    #[test]
    fn serde_is_a_string_and_refuses_numbers() {
        let a: Amount = serde_json::from_str("\"12.30\"").unwrap();
        assert_eq!(a.fen(), 1230);
        assert_eq!(serde_json::to_string(&a).unwrap(), "\"12.30\"");
        assert!(serde_json::from_str::<Amount>("12.3").is_err());
    }

    proptest! {
        #[test]
        fn roundtrip(fen in 0u64..=10_000_000_000) {
            let a = Amount::from_fen(fen).unwrap();
            let s = a.to_string();
            prop_assert_eq!(Amount::parse(&s).unwrap(), a);
        }

        #[test]
        fn never_panics_and_accepts_only_canonical_shapes(s in "\\PC{0,16}") {
            if let Ok(a) = Amount::parse(&s) {
                // Anything accepted reformats to the same value, with at most the
                // decimals padded.
                let f = a.to_string();
                prop_assert!(f.starts_with(s.split('.').next().unwrap()));
                prop_assert!(s.bytes().all(|b| b.is_ascii_digit() || b == b'.'));
            }
        }

        #[test]
        fn rejects_three_decimals(int in 0u64..1000, frac in 0u64..1000) {
            let s = format!("{int}.{frac:03}");
            prop_assert!(Amount::parse(&s).is_err());
        }
    }
}
