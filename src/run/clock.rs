//! Contact-local time: `every monday 09:00` occurrences and quiet hours,
//! across daylight-saving changes (jiff's bundled tz database).
//!
//! For `every … HH:MM`, a local time that does not exist (the clock jumps
//! over it) moves forward by the length of the gap; an ambiguous one (the
//! clock repeats it) takes its first occurrence. That is jiff's
//! `compatible` disambiguation, which `civil::DateTime::to_zoned` uses.
//!
//! Quiet hours are a set of instants: those whose local clock time is in
//! the window. A deferral goes to the first instant after `at` that is not
//! in it — when the window's end falls in a gap, that is the instant the
//! clock jumps (02:30 in a 02:00→03:00 gap: 03:00, not 03:30); when the
//! clock falls back to before the window's start, the instant it does.

use jiff::Timestamp;
use jiff::civil::{Date, DateTime, Time, Weekday};
use jiff::tz::TimeZone;

/// A clock time `HH:MM` as seconds after local midnight.
pub fn parse_clock(s: &str) -> Option<i32> {
    let (h, m) = s.split_once(':')?;
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    ((0..24).contains(&h) && (0..60).contains(&m)).then_some(h * 3600 + m * 60)
}

/// `day` or a weekday name, as in `every monday 09:00`; `None` for `day`.
pub fn parse_day(s: &str) -> Option<Option<Weekday>> {
    Some(match s {
        "day" => None,
        "monday" => Some(Weekday::Monday),
        "tuesday" => Some(Weekday::Tuesday),
        "wednesday" => Some(Weekday::Wednesday),
        "thursday" => Some(Weekday::Thursday),
        "friday" => Some(Weekday::Friday),
        "saturday" => Some(Weekday::Saturday),
        "sunday" => Some(Weekday::Sunday),
        _ => return None,
    })
}

pub(crate) fn local(at: i64, tz: &TimeZone) -> Option<DateTime> {
    Some(
        Timestamp::from_second(at)
            .ok()?
            .to_zoned(tz.clone())
            .datetime(),
    )
}

/// The local clock time at `at`, in seconds after midnight.
fn clock_at(at: i64, tz: &TimeZone) -> Option<i32> {
    let offset = tz.to_offset(Timestamp::from_second(at).ok()?).seconds();
    Some((at + i64::from(offset)).rem_euclid(86_400) as i32)
}

/// The instant of local `date` at `clock` seconds after midnight.
pub(crate) fn instant(date: Date, clock: i32, tz: &TimeZone) -> Option<i64> {
    let zoned = date
        .to_datetime(time_of(clock)?)
        .to_zoned(tz.clone())
        .ok()?;
    Some(zoned.timestamp().as_second())
}

/// Clock seconds after midnight as a time of day.
fn time_of(clock: i32) -> Option<Time> {
    Time::new(
        (clock / 3600) as i8,
        (clock / 60 % 60) as i8,
        (clock % 60) as i8,
        0,
    )
    .ok()
}

/// The first occurrence at or after `at` of local `clock` on `day` (every
/// day when `None`). One occurrence per local day, whatever the offset.
pub fn next_every(day: Option<Weekday>, clock: i32, tz: &TimeZone, at: i64) -> Option<i64> {
    let today = local(at, tz)?.date();
    // Start the day before: an occurrence moved forward by a gap may
    // belong to the previous local date.
    let mut date = today.yesterday().ok()?;
    for _ in 0..10 {
        if day.is_none_or(|d| date.weekday() == d)
            && let Some(t) = instant(date, clock, tz)
            && t >= at
        {
            return Some(t);
        }
        date = date.tomorrow().ok()?;
    }
    None
}

/// Quiet hours `[start, end)` in contact-local clock seconds; when `start >
/// end` the interval wraps past midnight; `start == end` is no quiet time.
#[derive(Clone, Copy, Debug)]
pub struct QuietHours {
    pub start: i32,
    pub end: i32,
}

impl QuietHours {
    fn contains_clock(&self, s: i32) -> bool {
        if self.start < self.end {
            self.start <= s && s < self.end
        } else if self.start > self.end {
            s >= self.start || s < self.end
        } else {
            false
        }
    }

    /// The first allowed instant at or after `at`: `at` itself outside
    /// quiet hours, else the first instant after it whose local clock time
    /// is outside the window.
    ///
    /// Between two transitions of the zone the local clock runs at the
    /// pace of UTC, so the period ends when the clock reaches the end —
    /// unless a transition comes first: the clock then jumps (over the end
    /// in a gap, back before the start in a fold, or from the end back into
    /// the window) and the question is asked again from there.
    pub fn first_allowed(&self, at: i64, tz: &TimeZone) -> i64 {
        let mut t = at;
        for _ in 0..8 {
            let Some(clock) = clock_at(t, tz) else {
                return t;
            };
            if !self.contains_clock(clock) {
                return t;
            }
            let end = t + i64::from((self.end - clock).rem_euclid(86_400));
            let transition = Timestamp::from_second(t)
                .ok()
                .and_then(|ts| tz.following(ts).next())
                .map(|tr| tr.timestamp().as_second());
            match transition {
                Some(tr) if tr <= end => t = tr,
                _ => return end,
            }
        }
        t
    }

    pub fn contains(&self, at: i64, tz: &TimeZone) -> bool {
        clock_at(at, tz).is_some_and(|c| self.contains_clock(c))
    }
}

/// Formats unix seconds as RFC 3339 UTC (`2026-01-15T09:00:00Z`).
pub fn rfc3339(at: i64) -> String {
    Timestamp::from_second(at)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| at.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> i64 {
        s.parse::<Timestamp>().unwrap().as_second()
    }

    fn tz(name: &str) -> TimeZone {
        crate::tzdb::zone(name).unwrap()
    }

    /// Every occurrence of `every day HH:MM` from `from` for `days` days.
    fn occurrences(zone: &str, clock: &str, from: &str, days: usize) -> Vec<String> {
        let tz = tz(zone);
        let c = parse_clock(clock).unwrap();
        let mut at = ts(from);
        let mut out = Vec::new();
        for _ in 0..days {
            let t = next_every(None, c, &tz, at).unwrap();
            out.push(
                Timestamp::from_second(t)
                    .unwrap()
                    .to_zoned(tz.clone())
                    .strftime("%F %T %:z")
                    .to_string(),
            );
            at = t + 1;
        }
        out
    }

    #[test]
    fn nine_local_happens_once_per_local_day_across_dst() {
        // Paris springs forward on 2026-03-29 and falls back on 2026-10-25.
        for (zone, from) in [
            ("Europe/Paris", "2026-03-27T00:00:00Z"),
            ("Europe/Paris", "2026-10-23T00:00:00Z"),
            ("America/New_York", "2026-03-06T12:00:00Z"),
            ("America/New_York", "2026-10-30T12:00:00Z"),
            ("Australia/Lord_Howe", "2026-04-03T00:00:00Z"),
            ("Australia/Lord_Howe", "2026-10-02T00:00:00Z"),
            ("America/Santiago", "2026-04-03T12:00:00Z"),
            ("America/Santiago", "2026-09-04T12:00:00Z"),
        ] {
            let got = occurrences(zone, "09:00", from, 5);
            let days: Vec<&str> = got.iter().map(|s| &s[..10]).collect();
            let mut unique = days.clone();
            unique.dedup();
            assert_eq!(unique.len(), 5, "{zone}: {got:?}");
            assert!(
                got.iter().all(|s| &s[11..19] == "09:00:00"),
                "{zone}: {got:?}"
            );
        }
    }

    #[test]
    fn lord_howe_shifts_by_thirty_minutes() {
        let got = occurrences("Australia/Lord_Howe", "09:00", "2026-04-03T00:00:00Z", 4);
        let offsets: Vec<&str> = got.iter().map(|s| &s[20..]).collect();
        assert!(
            offsets.contains(&"+11:00") && offsets.contains(&"+10:30"),
            "{got:?}"
        );
    }

    #[test]
    fn nonexistent_local_times_move_forward_by_the_gap() {
        // 02:30 does not exist in Paris on 2026-03-29: it becomes 03:30.
        let got = occurrences("Europe/Paris", "02:30", "2026-03-28T12:00:00Z", 3);
        assert_eq!(
            got,
            [
                "2026-03-29 03:30:00 +02:00",
                "2026-03-30 02:30:00 +02:00",
                "2026-03-31 02:30:00 +02:00"
            ]
        );
    }

    #[test]
    fn ambiguous_local_times_take_the_first_occurrence() {
        // 02:30 happens twice in Paris on 2026-10-25: first at +02:00.
        let got = occurrences("Europe/Paris", "02:30", "2026-10-24T12:00:00Z", 2);
        assert_eq!(
            got,
            ["2026-10-25 02:30:00 +02:00", "2026-10-26 02:30:00 +01:00"]
        );
    }

    #[test]
    fn weekly_occurrences_fall_on_the_weekday() {
        let tz = tz("America/Santiago");
        let c = parse_clock("09:00").unwrap();
        let t = next_every(Some(Weekday::Monday), c, &tz, ts("2026-04-01T00:00:00Z")).unwrap();
        let z = Timestamp::from_second(t).unwrap().to_zoned(tz);
        assert_eq!(z.weekday(), Weekday::Monday);
        assert_eq!((z.hour(), z.minute()), (9, 0));
    }

    #[test]
    fn quiet_hours_defer_to_their_local_end() {
        let q = QuietHours {
            start: parse_clock("21:00").unwrap(),
            end: parse_clock("08:00").unwrap(),
        };
        let paris = tz("Europe/Paris");
        // 22:00 local (21:00Z in winter) moves to 08:00 local next day.
        assert_eq!(
            q.first_allowed(ts("2026-01-15T21:00:00Z"), &paris),
            ts("2026-01-16T07:00:00Z")
        );
        // 06:00 local moves to 08:00 the same day.
        assert_eq!(
            q.first_allowed(ts("2026-01-16T05:00:00Z"), &paris),
            ts("2026-01-16T07:00:00Z")
        );
        // The end is allowed, one second before it is not.
        assert!(!q.contains(ts("2026-01-16T07:00:00Z"), &paris));
        assert!(q.contains(ts("2026-01-16T06:59:59Z"), &paris));
        // The start is quiet.
        assert!(q.contains(ts("2026-01-16T20:00:00Z"), &paris));
        // Across spring-forward: 08:00 local on 2026-03-29 is at +02:00.
        assert_eq!(
            q.first_allowed(ts("2026-03-28T22:00:00Z"), &paris),
            ts("2026-03-29T06:00:00Z")
        );
    }

    #[test]
    fn quiet_end_in_a_fold_is_its_second_pass_when_on_it() {
        let q = QuietHours {
            start: parse_clock("00:00").unwrap(),
            end: parse_clock("02:30").unwrap(),
        };
        let paris = tz("Europe/Paris");
        // 2026-10-25: 02:10 local on the second pass (+01:00) is 01:10Z;
        // the clock reaches 02:30 again at 01:30Z, not the next day.
        assert_eq!(
            q.first_allowed(ts("2026-10-25T01:10:00Z"), &paris),
            ts("2026-10-25T01:30:00Z")
        );
        // On the first pass (00:10Z is 02:10 +02:00): the first 02:30.
        assert_eq!(
            q.first_allowed(ts("2026-10-25T00:10:00Z"), &paris),
            ts("2026-10-25T00:30:00Z")
        );
    }

    #[test]
    fn quiet_end_in_a_gap_ends_when_the_clock_jumps() {
        let q = QuietHours {
            start: parse_clock("23:00").unwrap(),
            end: parse_clock("02:30").unwrap(),
        };
        let paris = tz("Europe/Paris");
        // 01:20 local on 2026-03-29 (00:20Z): the clock jumps from 02:00 to
        // 03:00 at 01:00Z, past the end (02:30 does not exist): 03:00 it
        // is, not 03:30.
        assert_eq!(
            q.first_allowed(ts("2026-03-29T00:20:00Z"), &paris),
            ts("2026-03-29T01:00:00Z")
        );
        assert!(!q.contains(ts("2026-03-29T01:00:00Z"), &paris));
        // A send due later never leaves earlier.
        assert_eq!(
            q.first_allowed(ts("2026-03-29T00:50:00Z"), &paris),
            ts("2026-03-29T01:00:00Z")
        );
    }

    #[test]
    fn quiet_ends_when_the_clock_falls_back_before_the_start() {
        // Adelaide falls back from 03:00 to 02:00 at 16:30Z on 2026-04-04:
        // 02:00 is outside a window from 02:01 to 03:00.
        let q = QuietHours {
            start: parse_clock("02:01").unwrap(),
            end: parse_clock("03:00").unwrap(),
        };
        let adelaide = tz("Australia/Adelaide");
        assert_eq!(
            q.first_allowed(ts("2026-04-04T16:29:00Z"), &adelaide),
            ts("2026-04-04T16:30:00Z")
        );
        // One minute later, on the second pass, quiet until 03:00 again.
        assert_eq!(
            q.first_allowed(ts("2026-04-04T16:31:00Z"), &adelaide),
            ts("2026-04-04T17:30:00Z")
        );
    }

    #[test]
    fn quiet_goes_on_when_the_clock_jumps_from_the_end_into_the_window() {
        // Chatham springs forward from 02:45 to 03:45 on 2026-09-27: a
        // window from 03:06 to 02:45 is still quiet after the jump.
        let q = QuietHours {
            start: parse_clock("03:06").unwrap(),
            end: parse_clock("02:45").unwrap(),
        };
        let chatham = tz("Pacific/Chatham");
        assert_eq!(
            q.first_allowed(ts("2026-09-26T13:59:00Z"), &chatham),
            ts("2026-09-27T13:00:00Z")
        );
    }
}
