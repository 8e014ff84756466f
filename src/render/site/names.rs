//! File names of the preview site. Template, persona, scenario and cadence
//! names are `[a-z_][a-z0-9_]*` of any length; a file name is not: most
//! file systems stop at 255 bytes, and Windows refuses `con`, `nul`,
//! `aux`, `prn`, `com1`…`com9` and `lpt1`…`lpt9` as names, with or without
//! an extension. [`page_name`] keeps every usual name as it is and turns
//! the others into names that always work and never collide:
//!
//! - a reserved name gets a `-` appended (`con` → `con-`);
//! - a name longer than [`MAX_READABLE`] keeps its first 48 characters,
//!   then `-` and 16 hex digits of its SHA-256 (`very_long…-3f2a…`).
//!
//! Names cannot contain `-`, so a changed name never equals another name.
//! Every result is lower case, so two names cannot collide on the case-
//! insensitive file systems of macOS and Windows either.

use std::borrow::Cow;

/// The longest name used as it is in a file name (with `.html` and a
/// folder of the same length, paths stay far below Windows' 260).
pub const MAX_READABLE: usize = 64;

/// How many characters of a long name are kept readable.
const KEPT: usize = 48;

/// Names Windows reserves for devices, in any case and with any extension.
fn reserved(name: &str) -> bool {
    matches!(name, "con" | "prn" | "aux" | "nul")
        || ((name.starts_with("com") || name.starts_with("lpt"))
            && name.len() == 4
            && name.as_bytes()[3].is_ascii_digit())
}

/// The file name (without extension) of the pages of `name`: `name` itself
/// when it is short and not reserved.
pub fn page_name(name: &str) -> Cow<'_, str> {
    if name.len() > MAX_READABLE {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(name.as_bytes());
        let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        // Names are ASCII, but stay on a character boundary whatever comes.
        let mut cut = KEPT.min(name.len());
        while !name.is_char_boundary(cut) {
            cut -= 1;
        }
        return Cow::Owned(format!("{}-{hex}", &name[..cut]));
    }
    if reserved(&name.to_ascii_lowercase()) {
        return Cow::Owned(format!("{name}-"));
    }
    Cow::Borrowed(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usual_names_are_kept() {
        for n in [
            "offer", "index", "marie", "console", "com", "com10", "lpt_1", "a",
        ] {
            assert_eq!(page_name(n), n);
        }
    }

    #[test]
    fn reserved_names_are_changed() {
        for n in ["con", "nul", "aux", "prn", "com1", "lpt9", "com0"] {
            assert_eq!(page_name(n), format!("{n}-"));
        }
    }

    #[test]
    fn long_names_are_hashed_distinctly_and_stay_short() {
        let a = "a".repeat(300);
        let b = format!("{}b", "a".repeat(299));
        let (pa, pb) = (page_name(&a), page_name(&b));
        assert_ne!(pa, pb);
        assert_eq!(pa.len(), KEPT + 1 + 16);
        assert!(pa.starts_with(&"a".repeat(KEPT)));
        assert_eq!(
            page_name(&"x".repeat(MAX_READABLE)),
            "x".repeat(MAX_READABLE)
        );
        assert_ne!(
            page_name(&"x".repeat(MAX_READABLE + 1)),
            "x".repeat(MAX_READABLE + 1)
        );
    }
}
