//! Calendar triggers (v1.1): `every day|WEEKDAY|weekday HH:MM`, `every
//! month on N|last HH:MM` and `once at DATE HH:MM local`, all in the
//! contact's own zone (jiff's bundled tz database).
//!
//! Like `every` in [`super::clock`], a local time the clock jumps over
//! moves forward by the length of the gap, and a local time the clock
//! repeats takes its first occurrence (jiff's `compatible`
//! disambiguation); there is one occurrence per matching local date.

use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;

use super::clock::{instant, local, next_every, parse_day};

/// The local dates a calendar trigger fires on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Days {
    /// `every day`
    Daily,
    /// `every monday`
    On(Weekday),
    /// `every weekday`: Monday to Friday.
    Weekdays,
    /// `every month on N` (1 to 28).
    Month(i8),
    /// `every month on last`.
    MonthLast,
}

impl Days {
    /// The `day` of a plan's `every` trigger: `day`, `weekday` or a weekday.
    pub fn every(day: &str) -> Option<Days> {
        if day == "weekday" {
            return Some(Days::Weekdays);
        }
        Some(match parse_day(day)? {
            None => Days::Daily,
            Some(d) => Days::On(d),
        })
    }

    /// The `day` of a plan's `monthly` trigger: `1` to `28` or `last`.
    pub fn monthly(day: &str) -> Option<Days> {
        if day == "last" {
            return Some(Days::MonthLast);
        }
        let n: i8 = day.parse().ok()?;
        (1..=28).contains(&n).then_some(Days::Month(n))
    }

    /// Whether the trigger fires on local `date`.
    pub fn contains(self, date: Date) -> bool {
        match self {
            Days::Daily => true,
            Days::On(d) => date.weekday() == d,
            Days::Weekdays => !super::business::is_weekend(date),
            Days::Month(n) => date.day() == n,
            Days::MonthLast => date.day() == date.days_in_month(),
        }
    }
}

/// The first occurrence at or after `at` of local `clock` (seconds after
/// midnight) on the dates of `days`.
pub fn next(days: Days, clock: i32, tz: &TimeZone, at: i64) -> Option<i64> {
    match days {
        Days::Daily => next_every(None, clock, tz, at),
        Days::On(d) => next_every(Some(d), clock, tz, at),
        Days::Weekdays => {
            // From the day before (an occurrence moved forward by a gap
            // may belong to it); a weekday comes within four days.
            let mut date = local(at, tz)?.date().yesterday().ok()?;
            for _ in 0..8 {
                if days.contains(date)
                    && let Some(t) = instant(date, clock, tz)
                    && t >= at
                {
                    return Some(t);
                }
                date = date.tomorrow().ok()?;
            }
            None
        }
        Days::Month(_) | Days::MonthLast => {
            // The previous month's date (for the same reason), this
            // month's, then the next ones.
            let first = local(at, tz)?.date().first_of_month();
            for m in -1..3 {
                let month = first.checked_add(jiff::Span::new().months(m)).ok()?;
                let date = match days {
                    Days::Month(n) => month.with().day(n).build().ok()?,
                    _ => month.last_of_month(),
                };
                if let Some(t) = instant(date, clock, tz)
                    && t >= at
                {
                    return Some(t);
                }
            }
            None
        }
    }
}

/// `once at DATE HH:MM local`: the instant of that local date and time in
/// zone `tz` (a time in a gap moves forward by the gap, a repeated time is
/// its first occurrence).
pub fn once_local(date: Date, clock: i32, tz: &TimeZone) -> Option<i64> {
    instant(date, clock, tz)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::Timestamp;

    fn ts(s: &str) -> i64 {
        s.parse::<Timestamp>().unwrap().as_second()
    }

    fn tz(name: &str) -> TimeZone {
        crate::tzdb::zone(name).unwrap()
    }

    fn show(t: i64, zone: &str) -> String {
        Timestamp::from_second(t)
            .unwrap()
            .to_zoned(tz(zone))
            .strftime("%F %a %T %:z")
            .to_string()
    }

    /// The first `n` occurrences from `from`.
    fn occurrences(days: Days, zone: &str, clock: &str, from: &str, n: usize) -> Vec<String> {
        let z = tz(zone);
        let c = super::super::clock::parse_clock(clock).unwrap();
        let mut at = ts(from);
        (0..n)
            .map(|_| {
                let t = next(days, c, &z, at).unwrap();
                at = t + 1;
                show(t, zone)
            })
            .collect()
    }

    #[test]
    fn weekdays_skip_the_weekend() {
        // 2026-12-04 is a Friday.
        assert_eq!(
            occurrences(
                Days::Weekdays,
                "Europe/Paris",
                "09:00",
                "2026-12-04T09:00:00Z",
                3
            ),
            [
                "2026-12-07 Mon 09:00:00 +01:00",
                "2026-12-08 Tue 09:00:00 +01:00",
                "2026-12-09 Wed 09:00:00 +01:00"
            ]
        );
    }

    #[test]
    fn last_day_of_every_month() {
        assert_eq!(
            occurrences(
                Days::MonthLast,
                "America/New_York",
                "18:00",
                "2027-01-01T00:00:00Z",
                4
            ),
            [
                "2027-01-31 Sun 18:00:00 -05:00",
                "2027-02-28 Sun 18:00:00 -05:00",
                "2027-03-31 Wed 18:00:00 -04:00",
                "2027-04-30 Fri 18:00:00 -04:00"
            ]
        );
        // A leap year.
        assert_eq!(
            occurrences(Days::MonthLast, "UTC", "00:00", "2028-02-01T00:00:00Z", 1),
            ["2028-02-29 Tue 00:00:00 +00:00"]
        );
    }

    #[test]
    fn a_monthly_time_in_a_gap_moves_forward() {
        // Paris skips 02:00–03:00 on 2027-03-28.
        assert_eq!(
            occurrences(
                Days::Month(28),
                "Europe/Paris",
                "02:30",
                "2027-03-01T00:00:00Z",
                2
            ),
            [
                "2027-03-28 Sun 03:30:00 +02:00",
                "2027-04-28 Wed 02:30:00 +02:00"
            ]
        );
        // Paris skips 02:00–03:00 on 2026-03-29.
        assert_eq!(
            once_local("2026-03-29".parse().unwrap(), 9000, &tz("Europe/Paris"))
                .map(|t| show(t, "Europe/Paris")),
            Some("2026-03-29 Sun 03:30:00 +02:00".to_string())
        );
        // A fold takes the first 02:30 (+02:00).
        assert_eq!(
            once_local("2026-10-25".parse().unwrap(), 9000, &tz("Europe/Paris"))
                .map(|t| show(t, "Europe/Paris")),
            Some("2026-10-25 Sun 02:30:00 +02:00".to_string())
        );
    }

    #[test]
    fn plan_spellings() {
        assert_eq!(Days::every("weekday"), Some(Days::Weekdays));
        assert_eq!(Days::every("day"), Some(Days::Daily));
        assert_eq!(Days::monthly("28"), Some(Days::Month(28)));
        assert_eq!(Days::monthly("29"), None);
        assert_eq!(Days::monthly("last"), Some(Days::MonthLast));
    }
}
