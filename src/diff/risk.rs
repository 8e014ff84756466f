//! The risk codes of `relance diff` (`R0101`…): warnings about a change
//! that may hurt contacts or runs in flight. They are not diagnostics of a
//! project (no file, no span), so they live apart from
//! `diagnostics::codes`; `relance explain R0101` finds them too. Codes are
//! assigned once and never reused.

use std::fmt;

macro_rules! risk_codes {
    ($($code:ident $title:literal,)*) => {
        /// A stable risk code.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum RiskCode { $($code,)* }

        impl RiskCode {
            pub const ALL: &'static [RiskCode] = &[$(RiskCode::$code,)*];

            pub fn as_str(self) -> &'static str {
                match self { $(RiskCode::$code => stringify!($code),)* }
            }

            /// A one-line summary of the risk.
            pub fn title(self) -> &'static str {
                match self { $(RiskCode::$code => $title,)* }
            }

            /// The long explanation (`docs/errors/CODE.md`).
            pub fn explanation(self) -> &'static str {
                match self {
                    $(RiskCode::$code => include_str!(concat!("../../docs/errors/", stringify!($code), ".md")),)*
                }
            }

            pub fn parse(s: &str) -> Option<RiskCode> {
                let s = s.trim().to_ascii_uppercase();
                RiskCode::ALL.iter().copied().find(|c| c.as_str() == s)
            }
        }
    };
}

risk_codes! {
    R0101 "steps removed from a scenario or cadence",
    R0102 "an audience admits contacts the old one refused",
    R0103 "a pressure cap raised or removed",
    R0104 "quiet hours shortened or removed",
    R0105 "a consent rule loosened or removed",
}

impl fmt::Display for RiskCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_risk_code_has_its_explanation() {
        for &c in RiskCode::ALL {
            let first = c.explanation().lines().next().unwrap_or_default();
            assert_eq!(first, format!("# {c}: {}", c.title()));
            assert!(c.explanation().contains("## Example"), "{c}");
        }
    }

    #[test]
    fn risk_codes_parse_case_insensitively() {
        assert_eq!(RiskCode::parse(" r0103 "), Some(RiskCode::R0103));
        assert_eq!(RiskCode::parse("R0199"), None);
    }
}
