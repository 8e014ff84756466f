//! Business days and weekends, contact-local (LANGUAGE.md §12).
//!
//! `N business days` after an instant lands on the N-th weekday (Monday to
//! Friday) after the instant's local date, counted one by one, at the same
//! local time of day: Friday 10:00 + 2 business days is Tuesday 10:00;
//! Saturday 10:00 + 1 business day is Monday 10:00. `0 business days` is
//! the instant itself on a weekday, else the next Monday at that time. A
//! landing time that does not exist (DST gap) moves forward by the gap; an
//! ambiguous one takes its first occurrence (jiff's `compatible`), as for
//! `every … HH:MM`.
//!
//! `quiet weekends` is the set of instants whose local date is a Saturday
//! or a Sunday; a deferral goes to the first instant after that is not in
//! it (Monday 00:00 local, or the instant a transition leaves the weekend).
//! Quiet rules ([`QuietRule`]) combine: a message obeys every rule that
//! applies to it, and the earliest instant that satisfies them all is found
//! by moving forward to each rule's first allowed instant until none moves.

use jiff::Timestamp;
use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;

use super::clock::{QuietHours, local};

/// `Monday 07:00`: an instant as the contact's clock shows it, for traces.
pub fn local_text(at: i64, tz: &TimeZone) -> String {
    Timestamp::from_second(at).map_or_else(
        |_| at.to_string(),
        |t| t.to_zoned(tz.clone()).strftime("%A %H:%M").to_string(),
    )
}

/// Saturday or Sunday (local dates).
pub(crate) fn is_weekend(d: Date) -> bool {
    matches!(d.weekday(), Weekday::Saturday | Weekday::Sunday)
}

/// The weekday `n` business days after local date `d`, counted one by one
/// (`n == 0`: `d` itself on a weekday, else the next Monday).
fn add_to_date(d: Date, n: u32) -> Option<Date> {
    let mut d = d;
    if n == 0 {
        while is_weekend(d) {
            d = d.tomorrow().ok()?;
        }
        return Some(d);
    }
    // Whole weeks first: five business days are seven days from any date.
    let weeks = i64::from((n - 1) / 5);
    d = d
        .checked_add(jiff::Span::new().try_days(weeks * 7).ok()?)
        .ok()?;
    for _ in 0..(n - 1) % 5 + 1 {
        d = d.tomorrow().ok()?;
        while is_weekend(d) {
            d = d.tomorrow().ok()?;
        }
    }
    Some(d)
}

/// The instant `n` business days after `at` in zone `tz`; `i64::MAX` past
/// the calendar's end (year 9999), which no window reaches.
pub fn add_business_days(at: i64, n: u32, tz: &TimeZone) -> i64 {
    let landed = || -> Option<i64> {
        let start = local(at, tz)?;
        let date = add_to_date(start.date(), n)?;
        let zoned = date.to_datetime(start.time()).to_zoned(tz.clone()).ok()?;
        Some(zoned.timestamp().as_second())
    };
    // A landing in a fold or a gap never goes back before `at` itself.
    landed().map_or(i64::MAX, |t| t.max(at))
}

/// `quiet weekends`: Saturday and Sunday, contact-local.
#[derive(Clone, Copy, Debug)]
pub struct Weekends;

impl Weekends {
    pub fn contains(&self, at: i64, tz: &TimeZone) -> bool {
        local(at, tz).is_some_and(|l| is_weekend(l.date()))
    }

    /// The first instant at or after `at` whose local date is a weekday.
    /// Between transitions the local clock runs at the pace of UTC, so the
    /// weekend ends when the clock reaches Monday 00:00 — unless a
    /// transition comes first, and the question is asked again from there.
    pub fn first_allowed(&self, at: i64, tz: &TimeZone) -> i64 {
        let mut t = at;
        for _ in 0..16 {
            let Some(l) = local(t, tz) else { return t };
            if !is_weekend(l.date()) {
                return t;
            }
            let days = if l.date().weekday() == Weekday::Saturday {
                2
            } else {
                1
            };
            let into_day =
                i64::from(l.hour()) * 3600 + i64::from(l.minute()) * 60 + i64::from(l.second());
            let end = t + days * 86_400 - into_day;
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
}

/// What a quiet rule keeps quiet.
#[derive(Clone, Copy, Debug)]
pub enum QuietKind {
    Hours(QuietHours),
    Weekends,
}

/// One quiet rule: v1's `quiet 21:00 to 08:00`, or v1.1's `quiet
/// weekends`, `quiet sms 20:00 to 10:00`, `quiet task weekends`.
#[derive(Clone, Debug)]
pub struct QuietRule {
    /// `Some(channel)`: every message of that channel; `None`: marketing.
    pub channel: Option<usize>,
    pub kind: QuietKind,
    /// How the trace names the rule (`quiet hours`, `` `quiet weekends` ``).
    pub label: String,
}

impl QuietRule {
    pub fn applies(&self, channel: usize, marketing: bool) -> bool {
        match self.channel {
            Some(c) => c == channel,
            None => marketing,
        }
    }

    pub fn contains(&self, at: i64, tz: &TimeZone) -> bool {
        match &self.kind {
            QuietKind::Hours(q) => q.contains(at, tz),
            QuietKind::Weekends => Weekends.contains(at, tz),
        }
    }

    pub fn first_allowed(&self, at: i64, tz: &TimeZone) -> i64 {
        match &self.kind {
            QuietKind::Hours(q) => q.first_allowed(at, tz),
            QuietKind::Weekends => Weekends.first_allowed(at, tz),
        }
    }
}

/// The earliest instant at or after `at` that every rule in `rules` allows,
/// with the label of the last rule that moved it (`None`: `at` itself).
pub fn first_allowed_by_all<'r>(
    rules: impl Iterator<Item = &'r QuietRule> + Clone,
    at: i64,
    tz: &TimeZone,
) -> (i64, Option<&'r QuietRule>) {
    let mut t = at;
    let mut last = None;
    // Each pass moves forward to a rule's end or stops: a handful of
    // passes settle any real combination; the bound guards the rest.
    for _ in 0..64 {
        let mut moved = false;
        for r in rules.clone() {
            let y = r.first_allowed(t, tz);
            if y > t {
                t = y;
                last = Some(r);
                moved = true;
            }
        }
        if !moved {
            break;
        }
    }
    (t, last)
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

    fn show(t: i64, tz: &TimeZone) -> String {
        Timestamp::from_second(t)
            .unwrap()
            .to_zoned(tz.clone())
            .strftime("%a %F %T %:z")
            .to_string()
    }

    #[test]
    fn business_days_are_counted_one_by_one() {
        let paris = tz("Europe/Paris");
        // Friday 2026-01-16 10:00 local.
        let fri = ts("2026-01-16T09:00:00Z");
        assert_eq!(
            show(add_business_days(fri, 1, &paris), &paris),
            "Mon 2026-01-19 10:00:00 +01:00"
        );
        assert_eq!(
            show(add_business_days(fri, 2, &paris), &paris),
            "Tue 2026-01-20 10:00:00 +01:00"
        );
        assert_eq!(
            show(add_business_days(fri, 5, &paris), &paris),
            "Fri 2026-01-23 10:00:00 +01:00"
        );
        assert_eq!(
            show(add_business_days(fri, 6, &paris), &paris),
            "Mon 2026-01-26 10:00:00 +01:00"
        );
        assert_eq!(add_business_days(fri, 0, &paris), fri);
        // Saturday and Sunday: the next business day is Monday.
        let sat = ts("2026-01-17T09:00:00Z");
        let sun = ts("2026-01-18T09:00:00Z");
        for start in [sat, sun] {
            assert_eq!(
                show(add_business_days(start, 0, &paris), &paris),
                "Mon 2026-01-19 10:00:00 +01:00"
            );
            assert_eq!(
                show(add_business_days(start, 1, &paris), &paris),
                "Mon 2026-01-19 10:00:00 +01:00"
            );
            assert_eq!(
                show(add_business_days(start, 2, &paris), &paris),
                "Tue 2026-01-20 10:00:00 +01:00"
            );
        }
    }

    #[test]
    fn business_days_keep_the_local_time_across_dst() {
        let paris = tz("Europe/Paris");
        // Friday 2026-03-27 10:00 +01:00; Paris springs forward on Sunday.
        let fri = ts("2026-03-27T09:00:00Z");
        assert_eq!(
            show(add_business_days(fri, 1, &paris), &paris),
            "Mon 2026-03-30 10:00:00 +02:00"
        );
        // 02:30 on the day of the gap does not exist: forward by the gap.
        // Friday 2026-03-27 02:30 + 0 days is itself; a Saturday 02:30 + 0
        // lands on Monday 02:30, which exists.
        let sat = ts("2026-03-28T01:30:00Z");
        assert_eq!(
            show(add_business_days(sat, 0, &paris), &paris),
            "Mon 2026-03-30 02:30:00 +02:00"
        );
        // New York falls back on Sunday 2026-11-01.
        let ny = tz("America/New_York");
        let fri = ts("2026-10-30T13:00:00Z"); // 09:00 -04:00
        assert_eq!(
            show(add_business_days(fri, 1, &ny), &ny),
            "Mon 2026-11-02 09:00:00 -05:00"
        );
    }

    #[test]
    fn a_landing_in_a_gap_moves_forward_by_the_gap() {
        // Cairo springs forward from 00:00 to 01:00 on Friday 2026-04-24:
        // Thursday 00:30 + 1 business day is Friday 01:30 (+03:00).
        let cairo = tz("Africa/Cairo");
        let thu = ts("2026-04-22T22:30:00Z"); // Thursday 00:30 +02:00
        assert_eq!(
            show(add_business_days(thu, 1, &cairo), &cairo),
            "Fri 2026-04-24 01:30:00 +03:00"
        );
    }

    #[test]
    fn weekends_end_on_monday_midnight() {
        let paris = tz("Europe/Paris");
        let sat = ts("2026-01-17T12:00:00Z");
        assert!(Weekends.contains(sat, &paris));
        assert_eq!(
            show(Weekends.first_allowed(sat, &paris), &paris),
            "Mon 2026-01-19 00:00:00 +01:00"
        );
        let fri = ts("2026-01-16T22:59:59Z"); // 23:59:59 Friday
        assert_eq!(Weekends.first_allowed(fri, &paris), fri);
        // Across spring-forward (Sunday 2026-03-29).
        let sun = ts("2026-03-29T10:00:00Z");
        assert_eq!(
            show(Weekends.first_allowed(sun, &paris), &paris),
            "Mon 2026-03-30 00:00:00 +02:00"
        );
    }

    #[test]
    fn rules_combine_to_the_earliest_instant_all_allow() {
        let paris = tz("Europe/Paris");
        let rules = [
            QuietRule {
                channel: None,
                kind: QuietKind::Weekends,
                label: "weekends".into(),
            },
            QuietRule {
                channel: None,
                kind: QuietKind::Hours(QuietHours {
                    start: 22 * 3600,
                    end: 7 * 3600,
                }),
                label: "hours".into(),
            },
        ];
        // A Sunday send goes on Monday at 07:00.
        let sun = ts("2026-01-18T12:00:00Z");
        let (t, by) = first_allowed_by_all(rules.iter(), sun, &paris);
        assert_eq!(show(t, &paris), "Mon 2026-01-19 07:00:00 +01:00");
        assert_eq!(by.map(|r| r.label.as_str()), Some("hours"));
        // Friday 23:00 goes on Monday 07:00 too.
        let fri = ts("2026-01-16T22:00:00Z");
        let (t, _) = first_allowed_by_all(rules.iter(), fri, &paris);
        assert_eq!(show(t, &paris), "Mon 2026-01-19 07:00:00 +01:00");
    }
}
