//! The registry of diagnostic codes: one place, assigned once, never reused.
//! Each code has an explanation in `docs/errors/CODE.md`, printed by
//! `relance explain CODE` and checked by `tests/explain.rs`.

use std::fmt;

use super::Severity;

macro_rules! codes {
    ($($code:ident $sev:ident $title:literal,)*) => {
        /// A stable diagnostic code.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Code { $($code,)* }

        impl Code {
            pub const ALL: &'static [Code] = &[$(Code::$code,)*];

            pub fn as_str(self) -> &'static str {
                match self { $(Code::$code => stringify!($code),)* }
            }

            pub fn severity(self) -> Severity {
                match self { $(Code::$code => Severity::$sev,)* }
            }

            /// A one-line summary of the problem.
            pub fn title(self) -> &'static str {
                match self { $(Code::$code => $title,)* }
            }

            /// The long explanation, with a wrong and a right example.
            pub fn explanation(self) -> &'static str {
                match self {
                    $(Code::$code => include_str!(concat!("../../docs/errors/", stringify!($code), ".md")),)*
                }
            }

            pub fn parse(s: &str) -> Option<Code> {
                let s = s.trim().to_ascii_uppercase();
                Code::ALL.iter().copied().find(|c| c.as_str() == s)
            }
        }
    };
}

codes! {
    // Input and syntax.
    E0001 Error "syntax error",
    E0002 Error "file is not valid UTF-8",
    E0003 Error "file is too large",
    E0004 Error "nesting is too deep",
    E0005 Error "file is too complex to parse",
    E0006 Error "file contains a NUL byte",
    E0007 Error "project has no campaign files",
    E0008 Error "invalid escape in a string",
    E0009 Error "invalid literal",
    E0010 Error "unterminated block comment",
    E0011 Error "keyword used as a name",
    E0020 Error "segments nest too deeply",
    // Declarations.
    E0101 Error "name declared twice",
    E0102 Error "declaration allowed only once",
    E0103 Error "missing contact schema",
    E0104 Error "duplicate entry",
    E0105 Error "setting given twice",
    E0106 Error "unknown attribute",
    E0107 Error "missing required attribute",
    E0108 Error "reserved field name",
    E0109 Error "unknown type",
    E0110 Error "unknown channel",
    E0111 Error "unknown time zone",
    E0112 Error "invalid value for a setting",
    E0140 Error "consent rule given twice for a channel",
    E0141 Error "consent rule on an operational channel",
    E0160 Error "day of the month that not every month has",
    // Locales (§12).
    E0190 Error "unknown locale",
    E0191 Error "per-locale setting without `locales`",
    E0192 Error "no `locale` field",
    E0193 Error "`locale` field of the wrong type",
    E0194 Error "`locale` enum does not match `locales`",
    E0195 Error "attribute without per-locale variants",
    // Names.
    E0201 Error "unknown field",
    E0202 Error "unknown template",
    E0203 Error "unknown list",
    E0204 Error "unknown link",
    E0205 Error "unknown event",
    E0206 Error "unknown cadence",
    E0207 Error "unknown segment",
    E0208 Error "unknown name",
    E0209 Error "unknown enum variant",
    E0210 Error "unknown event field",
    E0211 Error "name refers to the wrong kind of declaration",
    E0240 Error "unknown topic",
    // Types.
    E0301 Error "type mismatch",
    E0302 Error "values of this type have no order",
    E0303 Error "invalid `contains`",
    E0304 Error "set compared without `contains`",
    E0305 Error "optional bool used as a condition",
    E0306 Error "field is not a condition",
    E0307 Error "segment cycle",
    E0308 Error "aggregate over a field that is not a number",
    E0309 Error "`since` bound is not a time",
    E0310 Error "invalid aggregate",
    E0340 Error "consent rule is not a condition",
    E0350 Error "a duration added to a value that is not a time",
    E0351 Error "`wait until` or `at` without a point in time",
    E0352 Error "a date trigger or wait that depends on `now`",
    E0353 Error "`yearly` needs a date or timestamp field",
    E0360 Error "goal value is not a number field",
    E0380 Error "text test on a value that is not text",
    E0381 Error "invalid regular expression",
    E0382 Error "invalid `count distinct`",
    // Personas.
    E0401 Error "persona value has the wrong type",
    E0402 Error "persona misses a required field",
    E0403 Error "persona expectation does not hold",
    E0404 Error "negative persona in a marketing audience",
    // Templates.
    E0501 Error "no address field for the channel",
    E0502 Error "link URL must be https or mailto",
    E0503 Error "`kind` on an operational channel",
    E0504 Error "line break in a header",
    E0505 Error "marketing email without a postal address",
    W0501 Warning "several fields can receive a channel",
    E0506 Error "template file not found",
    E0507 Error "template file outside the project",
    E0510 Error "unknown template variable",
    E0511 Error "unknown template helper",
    E0512 Error "unknown partial",
    E0513 Error "partial cycle",
    E0514 Error "template syntax error",
    E0515 Error "marketing email without unsubscribe link",
    E0516 Error "line break in a rendered header",
    E0517 Error "invalid helper call",
    W0510 Warning "optional field without default",
    W0511 Warning "triple-stash on contact data",
    W0512 Warning "SMS too long",
    E0520 Error "rendered URL is not https: or mailto:",
    E0521 Error "rendered message too large",
    E0530 Error "marketing email does not show the postal address",
    E0531 Error "no visible unsubscribe link",
    E0532 Error "text part without the unsubscribe link",
    E0533 Error "`from` is not one mailbox",
    E0540 Error "marketing SMS without a consent rule",
    W0540 Warning "marketing email without a topic",
    W0570 Warning "`expires` on a message that is never deferred",
    E0580 Error "template sender or reply-to is not one mailbox",
    E0582 Error "unknown webhook method",
    E0583 Error "invalid webhook header",
    E0584 Error "invalid environment variable name",
    W0590 Warning "incomplete locale variants",
    // Scenarios.
    E0601 Error "split shares do not sum to 100%",
    E0602 Error "engagement with a template not sent before",
    W0601 Warning "unreachable branch arm",
    W0602 Warning "trigger can never fire for the audience",
    W0603 Warning "recurring trigger fires only once",
    W0604 Warning "steps after `exit` never run",
    W0660 Warning "two triggers can fire at the same instant",
    // Cadences.
    E0701 Error "cadence without touches",
    W0701 Warning "cadence never started",
    // Pressure.
    E0801 Error "invalid cap",
    E0802 Error "empty quiet hours",
    E0803 Error "cap on a channel that is never counted",
    E0870 Error "quiet rules leave no time to send",
    W0801 Warning "a path alone exceeds a pressure cap",
    // The project manifest, `relance.toml`.
    E0901 Error "relance.toml is not valid TOML",
    E0902 Error "bad value in relance.toml",
    W0901 Warning "unknown key in relance.toml",
    // Project files.
    E0910 Error "project file is not a regular file",
    W0910 Warning "checks skipped because of errors elsewhere",
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An explanation split into its parts, for `relance explain` and for the
/// test that compiles every example.
pub struct Explanation {
    pub text: &'static str,
}

impl Explanation {
    pub fn of(code: Code) -> Explanation {
        Explanation {
            text: code.explanation(),
        }
    }

    /// The fenced `camp` code blocks under a heading (`## Wrong`, `## Right`).
    pub fn examples(&self, heading: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut in_section = false;
        let mut block: Option<String> = None;
        for line in self.text.lines() {
            if let Some(h) = line.strip_prefix("## ") {
                in_section = h.trim().eq_ignore_ascii_case(heading);
                continue;
            }
            if !in_section {
                continue;
            }
            match (&mut block, line.trim_start()) {
                (None, l) if l.starts_with("```camp") => block = Some(String::new()),
                (Some(_), l) if l.starts_with("```") => out.extend(block.take()),
                (Some(b), _) => {
                    b.push_str(line);
                    b.push('\n');
                }
                _ => {}
            }
        }
        out
    }
}
