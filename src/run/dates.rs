//! Time relative to a date (LANGUAGE.md §12) in the contact's zone: the
//! instant a `wait until TIME` waits for, when an `at TIME [HH:MM]`
//! trigger fires, and the anniversaries of `yearly FIELD HH:MM`.
//!
//! A date (not a timestamp) stands for the start of that day in the
//! contact's zone. Local times follow `every`: a time in a DST gap moves
//! forward by the gap, an ambiguous one takes its first occurrence
//! (jiff's `compatible` disambiguation, through [`super::clock::instant`]).

use jiff::civil::Date;
use jiff::tz::TimeZone;

use super::clock::{instant, local};
use crate::syntax::ast::TimeValue;

/// The instant of a point in time: a timestamp as it is, a date at its
/// local midnight (or the first instant of that day, when midnight falls
/// in a DST gap).
pub fn instant_of(v: TimeValue, tz: &TimeZone) -> Option<i64> {
    match v {
        TimeValue::Instant(t) => Some(t),
        TimeValue::Date(d) => instant(d, 0, tz),
    }
}

/// The local date of a point in time in the contact's zone.
fn local_date(v: TimeValue, tz: &TimeZone) -> Option<Date> {
    match v {
        TimeValue::Instant(t) => Some(local(t, tz)?.date()),
        TimeValue::Date(d) => Some(d),
    }
}

/// When `at TIME [HH:MM]` fires for a contact whose TIME is `v`: at the
/// instant itself, or with a clock (seconds after midnight) at that local
/// time on the local date of the instant — even when that is earlier than
/// the instant.
pub fn at_fire(v: TimeValue, clock: Option<i32>, tz: &TimeZone) -> Option<i64> {
    match clock {
        None => instant_of(v, tz),
        Some(c) => instant(local_date(v, tz)?, c, tz),
    }
}

/// `date`'s anniversary in `year`: 29 February falls on 28 February in
/// the other years.
pub fn anniversary(date: Date, year: i16) -> Option<Date> {
    Date::new(year, date.month(), date.day())
        .ok()
        .or_else(|| Date::new(year, date.month(), date.day() - 1).ok())
}

/// The first anniversary of `v`'s local date at local `clock`, at or after
/// `at`. Anniversaries are in the years after the date's own (the date
/// itself is not one).
pub fn next_yearly(v: TimeValue, clock: i32, tz: &TimeZone, at: i64) -> Option<i64> {
    let date = local_date(v, tz)?;
    // The year before `at`'s local year: a time moved forward by a gap on
    // 31 December may land in the next year.
    let from = local(at, tz)?.date().year().saturating_sub(1);
    let first = from.max(date.year().checked_add(1)?);
    for year in first..first.saturating_add(4) {
        if let Some(t) = anniversary(date, year).and_then(|d| instant(d, clock, tz))
            && t >= at
        {
            return Some(t);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> i64 {
        s.parse::<jiff::Timestamp>().unwrap().as_second()
    }

    fn paris() -> TimeZone {
        crate::tzdb::zone("Europe/Paris").unwrap()
    }

    #[test]
    fn a_leap_day_falls_on_28_february_in_other_years() {
        let d = Date::constant(2024, 2, 29);
        assert_eq!(anniversary(d, 2025), Some(Date::constant(2025, 2, 28)));
        assert_eq!(anniversary(d, 2028), Some(Date::constant(2028, 2, 29)));
        let v = TimeValue::Date(d);
        // 09:00 in Paris (UTC+1 in winter).
        assert_eq!(
            next_yearly(v, 9 * 3600, &paris(), ts("2026-01-01T00:00:00Z")),
            Some(ts("2026-02-28T08:00:00Z"))
        );
        assert_eq!(
            next_yearly(v, 9 * 3600, &paris(), ts("2027-03-01T00:00:00Z")),
            Some(ts("2028-02-29T08:00:00Z"))
        );
    }

    #[test]
    fn the_date_itself_is_not_an_anniversary() {
        let v = TimeValue::Date(Date::constant(2026, 3, 10));
        assert_eq!(
            next_yearly(v, 0, &TimeZone::UTC, ts("2026-01-01T00:00:00Z")),
            Some(ts("2027-03-10T00:00:00Z"))
        );
    }

    #[test]
    fn at_a_clock_time_takes_the_local_date_of_the_instant() {
        // 23:30 UTC on 14 March is 00:30 on 15 March in Paris: 09:00 on
        // the 15th, after the instant. 22:00 UTC on the 15th is 23:00
        // local: 09:00 that day, before the instant.
        let tz = paris();
        let v = TimeValue::Instant(ts("2026-03-14T23:30:00Z"));
        assert_eq!(
            at_fire(v, Some(9 * 3600), &tz),
            Some(ts("2026-03-15T08:00:00Z"))
        );
        let v = TimeValue::Instant(ts("2026-03-15T22:00:00Z"));
        assert_eq!(
            at_fire(v, Some(9 * 3600), &tz),
            Some(ts("2026-03-15T08:00:00Z"))
        );
        assert_eq!(at_fire(v, None, &tz), Some(ts("2026-03-15T22:00:00Z")));
        // A date: its local midnight; 02:30 on the night clocks jump
        // (29 March 2026, 02:00 -> 03:00) moves forward to 03:30.
        let d = TimeValue::Date(Date::constant(2026, 3, 29));
        assert_eq!(at_fire(d, None, &tz), Some(ts("2026-03-28T23:00:00Z")));
        assert_eq!(
            at_fire(d, Some(2 * 3600 + 1800), &tz),
            Some(ts("2026-03-29T01:30:00Z"))
        );
    }
}
