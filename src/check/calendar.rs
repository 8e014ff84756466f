//! v1.1 scenario additions: several triggers (a warning when two of them
//! can fire at the same instant for one contact) and goals with a
//! condition, a value or a list (`goal joined LIST within D`).

use std::sync::LazyLock;

use jiff::Timestamp;
use jiff::civil::{DateTime, Time, Weekday as CivilWeekday};
use jiff::tz::TimeZone;

use super::expr::{Scope, check_expr};
use super::types::Type;
use super::{Kind, Project};
use crate::diagnostics::{Code, Diagnostic, Problems, Spanned, suggest};
use crate::syntax::ast::*;

/// Checks the goals of `s`: the event or list exists, the condition is
/// typed in the event's scope, the value is a number field of the event.
pub fn check_goals(p: &Project, s: &Scenario, problems: &mut Problems) {
    for g in &s.goals {
        if g.joined {
            p.expect_kind(&g.event, Kind::List, Code::E0203, problems);
            continue;
        }
        if !p.events.contains_key(g.event.name.as_str())
            && !p.expect_kind(&g.event, Kind::Event, Code::E0205, problems)
        {
            continue;
        }
        let Some(fields) = p.event_fields(&g.event.name) else {
            continue;
        };
        if let Some(f) = &g.filter {
            let scope = Scope {
                event: Some(fields),
                sent: None,
            };
            check_expr(p, f, &scope, problems);
        }
        let Some(v) = &g.value else { continue };
        let numbers = || {
            let n: Vec<&str> = fields
                .list
                .iter()
                .filter(|f| f.ty == Type::Number)
                .map(|f| f.name.as_str())
                .collect();
            match n.first() {
                Some(first) => format!(
                    "the number fields of `{}` are: {}; write `value {first}`",
                    g.event.name,
                    n.join(", ")
                ),
                None => format!(
                    "`{}` has no number field: declare one (`amount: number`) or remove `value`",
                    g.event.name
                ),
            }
        };
        match fields.get(&v.name) {
            None => problems.push(
                Diagnostic::new(
                    Code::E0210,
                    format!("event `{}` has no field `{}`", g.event.name, v.name),
                )
                .at(v.span, "unknown event field")
                .help_opt(suggest(&v.name, fields.names(), || Some(numbers()))),
            ),
            Some(f) if f.ty != Type::Number => problems.push(
                Diagnostic::new(
                    Code::E0360,
                    format!(
                        "`value {}` sums a field that is not a number (it is `{}`)",
                        v.name,
                        f.ty.describe()
                    ),
                )
                .at(v.span, "not a number field")
                .help(numbers()),
            ),
            Some(_) => {}
        }
    }
}

/// A calendar trigger as (local clock minutes, the local dates it fires on).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Dates {
    Every,
    Day(CivilWeekday),
    Weekdays,
    Month(u8),
    MonthLast,
    On(jiff::civil::Date),
}

fn dates(t: &Trigger) -> Option<(u16, Dates)> {
    Some(match t {
        Trigger::Every { day, time } => (
            time.node.0,
            match day.node {
                Weekday::Day => Dates::Every,
                Weekday::Weekday => Dates::Weekdays,
                Weekday::Monday => Dates::Day(CivilWeekday::Monday),
                Weekday::Tuesday => Dates::Day(CivilWeekday::Tuesday),
                Weekday::Wednesday => Dates::Day(CivilWeekday::Wednesday),
                Weekday::Thursday => Dates::Day(CivilWeekday::Thursday),
                Weekday::Friday => Dates::Day(CivilWeekday::Friday),
                Weekday::Saturday => Dates::Day(CivilWeekday::Saturday),
                Weekday::Sunday => Dates::Day(CivilWeekday::Sunday),
            },
        ),
        Trigger::Monthly { day, time } => (
            time.node.0,
            match day.node {
                Some(n) => Dates::Month(n),
                None => Dates::MonthLast,
            },
        ),
        Trigger::OnceLocal { date, time } => (time.node.0, Dates::On(date.node)),
        _ => return None,
    })
}

fn is_weekday(d: CivilWeekday) -> bool {
    !matches!(d, CivilWeekday::Saturday | CivilWeekday::Sunday)
}

/// Whether a trigger firing on `x` fires on local date `d`.
fn fires_on(x: Dates, d: jiff::civil::Date) -> bool {
    use Dates::*;
    match x {
        Every => true,
        Day(w) => d.weekday() == w,
        Weekdays => is_weekday(d.weekday()),
        Month(n) => d.day() == n as i8,
        MonthLast => d.tomorrow().is_ok_and(|t| t.day() == 1),
        On(e) => d == e,
    }
}

/// Whether some local date is in both sets. Every weekday falls on every
/// day of the month some month, and day 28 is the last one in a February
/// of a common year.
fn overlap(a: Dates, b: Dates) -> bool {
    use Dates::*;
    let on = |d: jiff::civil::Date, x: Dates| fires_on(x, d);
    match (a, b) {
        (On(d), x) | (x, On(d)) => on(d, x),
        (Every, _) | (_, Every) => true,
        (Day(x), Day(y)) => x == y,
        (Day(x), Weekdays) | (Weekdays, Day(x)) => is_weekday(x),
        (Weekdays, Weekdays) => true,
        (Day(_) | Weekdays, Month(_) | MonthLast) | (Month(_) | MonthLast, Day(_) | Weekdays) => {
            true
        }
        (Month(x), Month(y)) => x == y,
        (MonthLast, MonthLast) => true,
        (Month(n), MonthLast) | (MonthLast, Month(n)) => n == 28,
    }
}

/// What makes two triggers identical: the same list, event or segment,
/// the same instant, or the same local time on the same dates.
#[derive(Clone, PartialEq, Eq, Hash)]
enum Key<'a> {
    Joined(&'a str),
    Entered(&'a str),
    Event(&'a str),
    Once(i64),
    Calendar(u16, Dates),
}

fn key(t: &Trigger) -> Option<Key<'_>> {
    Some(match t {
        Trigger::Joined(x) => Key::Joined(&x.name),
        Trigger::Entered(x) => Key::Entered(&x.name),
        Trigger::Event { event, .. } => Key::Event(&event.name),
        Trigger::Once(at) => Key::Once(at.node),
        _ => {
            let (clock, d) = dates(t)?;
            Key::Calendar(clock, d)
        }
    })
}

/// W0660 for each trigger that can fire at the same instant as an earlier
/// one of the same scenario: an identical one, or a calendar trigger at the
/// same local time on a common date. Linear in the number of triggers
/// (times the few distinct recurring kinds of one clock time).
pub fn check_coinciding_triggers(p: &Project, s: &Scenario, problems: &mut Problems) {
    use std::collections::HashMap;
    let ts: &[Spanned<Trigger>] = &s.triggers;
    let mut reported = vec![false; ts.len()];
    let mut seen: HashMap<Key, usize> = HashMap::new();
    // Per clock time, the distinct recurring kinds and the distinct dates
    // of `once at … local`, with the first trigger of each.
    let mut recurring: HashMap<u16, Vec<(Dates, usize)>> = HashMap::new();
    let mut once: HashMap<u16, Vec<(Dates, usize)>> = HashMap::new();
    for (i, t) in ts.iter().enumerate() {
        let Some(k) = key(&t.node) else { continue };
        let earlier = match seen.get(&k) {
            Some(&j) => Some(j),
            None => {
                seen.insert(k.clone(), i);
                match k {
                    Key::Calendar(clock, d) => {
                        let hit = |v: Option<&Vec<(Dates, usize)>>| {
                            v.and_then(|v| v.iter().find(|(e, _)| overlap(*e, d)).map(|x| x.1))
                        };
                        let found = match d {
                            Dates::On(_) => hit(recurring.get(&clock)),
                            _ => hit(recurring.get(&clock)).or_else(|| hit(once.get(&clock))),
                        };
                        let list = if matches!(d, Dates::On(_)) {
                            &mut once
                        } else {
                            &mut recurring
                        };
                        list.entry(clock).or_default().push((d, i));
                        found
                    }
                    _ => None,
                }
            }
        };
        if let Some(j) = earlier {
            reported[i] = true;
            problems.push(
                Diagnostic::new(
                    Code::W0660,
                    format!(
                        "two triggers of scenario `{}` can fire at the same instant for one contact",
                        s.name.name
                    ),
                )
                .at(t.span, "this trigger")
                .also(ts[j].span, "can fire at the same instant as this one")
                .help("a contact enters once at that instant whichever fires: remove one trigger or give them different times"),
            );
        }
    }
    jumped_onto_one_instant(p, s, &reported, problems);
}

// ------------------------------------------------- summer-time jumps (W0660)

/// A day the clocks go forward in `zone`: the local times from `start` to
/// `start + len` seconds do not exist.
struct Jump {
    start: DateTime,
    len: i64,
    zone: String,
}

/// The jumps examined: 28 years from 2026 (when calendar triggers came),
/// a whole cycle of weekdays and dates, fixed so that the warning does not
/// change with the day the project is checked on.
const JUMPS_FROM: &str = "2026-01-01T00:00:00Z";
const JUMPS_UNTIL: &str = "2054-01-01T00:00:00Z";

/// No jump of the database is longer (a unit test keeps this true): two
/// triggers further apart are never moved onto one instant, and loading
/// every zone is not needed for them.
const LONGEST_JUMP: i32 = 4 * 3600;

/// Every jump of the database skips local times between 22:00 and 04:00
/// (a unit test keeps this true): a trigger at another time is never
/// moved, and loading every zone is not needed for it.
fn in_jump_hours(clock: i32) -> bool {
    !(4 * 3600..22 * 3600).contains(&clock)
}

/// The clocks going forward in `zone` within the years examined, in order.
fn jumps_of(name: &str, tz: &TimeZone, out: &mut Vec<Jump>) {
    let (Ok(from), Ok(until)) = (
        JUMPS_FROM.parse::<Timestamp>(),
        JUMPS_UNTIL.parse::<Timestamp>(),
    ) else {
        return;
    };
    for tr in tz.following(from) {
        let at = tr.timestamp();
        if at >= until {
            break;
        }
        let Ok(just_before) = at.checked_sub(jiff::SignedDuration::from_secs(1)) else {
            continue;
        };
        let before = tz.to_offset(just_before);
        let len = i64::from(tr.offset().seconds() - before.seconds());
        if len > 0 {
            out.push(Jump {
                start: before.to_datetime(at),
                len,
                zone: name.to_string(),
            });
        }
    }
}

/// The jumps of every zone of the bundled database (a contact with a
/// `timezone` field may live in any), zones in name order; a jump of the
/// same local start and length as one of an earlier zone is left out (it
/// moves the same triggers the same way).
fn every_zone_jumps() -> &'static [Jump] {
    static ALL: LazyLock<Vec<Jump>> = LazyLock::new(|| {
        let mut all = Vec::new();
        for name in crate::tzdb::names() {
            if let Some(tz) = crate::tzdb::zone(&name) {
                jumps_of(&name, &tz, &mut all);
            }
        }
        let mut seen = std::collections::HashSet::new();
        all.retain(|j| seen.insert((j.start, j.len)));
        all
    });
    &ALL
}

/// W0660 for two calendar triggers at different local times that a jump
/// of the clocks moves onto one instant: the runner moves a local time the
/// clock skips forward by the length of the jump (`run::clock::instant`),
/// so in Paris `every day 02:30` fires at 03:30 on the last Sunday of
/// March, with `every day 03:30`. The contact's zone is its `timezone`
/// field (any zone), else the workspace's (UTC has no jumps).
fn jumped_onto_one_instant(p: &Project, s: &Scenario, reported: &[bool], problems: &mut Problems) {
    use std::collections::{BTreeMap, HashMap};
    let ts = &s.triggers;
    // Per local clock time (seconds), the first trigger of each recurring
    // kind and of each `once … local` date: a handful per clock, however
    // many triggers there are.
    #[derive(Default)]
    struct At {
        recurring: Vec<(Dates, usize)>,
        once: HashMap<jiff::civil::Date, usize>,
    }
    impl At {
        fn firing(&self, d: jiff::civil::Date) -> impl Iterator<Item = usize> + '_ {
            let recurring = self.recurring.iter();
            recurring
                .filter(move |(k, _)| fires_on(*k, d))
                .map(|&(_, i)| i)
                .chain(self.once.get(&d).copied())
        }
    }
    let mut by_clock: BTreeMap<i32, At> = BTreeMap::new();
    for (i, t) in ts.iter().enumerate() {
        let Some((clock, d)) = dates(&t.node) else {
            continue;
        };
        let at = by_clock.entry(i32::from(clock) * 60).or_default();
        match d {
            Dates::On(date) => {
                at.once.entry(date).or_insert(i);
            }
            _ if at.recurring.iter().any(|(k, _)| *k == d) => {}
            _ => at.recurring.push((d, i)),
        }
    }
    // Only a clock in the hours the clocks jump over can move, onto one at
    // most a jump later.
    let close = by_clock.keys().filter(|&&a| in_jump_hours(a)).any(|&a| {
        by_clock.range(a + 1..=a + LONGEST_JUMP).next().is_some()
            || by_clock
                .range(..=a + LONGEST_JUMP - 86_400)
                .next()
                .is_some()
    });
    if !close {
        return;
    }
    let workspace = p
        .workspace
        .and_then(|w| w.attrs.iter().find(|a| a.name.name == "timezone"))
        .and_then(|a| match &a.value.node {
            AttrValue::Str(z) => crate::tzdb::canonical_name(z),
            _ => None,
        });
    let mut own = Vec::new();
    if let Some(name) = &workspace
        && let Some(tz) = crate::tzdb::zone(name)
    {
        jumps_of(name, &tz, &mut own);
    }
    let any_zone = p.schema.list.iter().any(|f| f.ty == Type::Timezone);
    let all: &[Jump] = if any_zone { every_zone_jumps() } else { &[] };
    let mut done = reported.to_vec();
    for jump in own.iter().chain(all) {
        let Ok(end) = jump.start.checked_add(jiff::Span::new().seconds(jump.len)) else {
            continue;
        };
        let mut days = vec![jump.start.date()];
        if end.date() != jump.start.date() {
            days.push(end.date());
        }
        for d in days {
            // The clock times of `d` inside the jump.
            let secs = |t: Time| i32::from(t.hour()) * 3600 + i32::from(t.minute()) * 60;
            let lo = if d == jump.start.date() {
                secs(jump.start.time())
            } else {
                0
            };
            let hi = if d == end.date() {
                secs(end.time())
            } else {
                86_400
            };
            for (&a, at) in by_clock.range(lo..hi) {
                let Some(local) = clock_time(a).map(|t| d.to_datetime(t)) else {
                    continue;
                };
                if local < jump.start || local >= end {
                    continue;
                }
                let Ok(to) = local.checked_add(jiff::Span::new().seconds(jump.len)) else {
                    continue;
                };
                let b = secs(to.time());
                let Some(there) = by_clock.get(&b).filter(|_| to.time().second() == 0) else {
                    continue;
                };
                for i in at.firing(d) {
                    for j in there.firing(to.date()) {
                        let (later, earlier) = (i.max(j), i.min(j));
                        if done[later] {
                            continue;
                        }
                        // The runner's own rule decides.
                        let Some(tz) = crate::tzdb::zone(&jump.zone) else {
                            continue;
                        };
                        let at_a = crate::run::clock::instant(d, a, &tz);
                        if at_a.is_none() || at_a != crate::run::clock::instant(to.date(), b, &tz) {
                            continue;
                        }
                        done[later] = true;
                        problems.push(jump_warning(s, later, earlier, jump, d, end, a, b));
                    }
                }
            }
        }
    }
}

/// The W0660 of two triggers that the jump `jump` (on local date `date`,
/// ending at `end`) moves onto one instant: `a` moves forward to `b`.
#[allow(clippy::too_many_arguments)]
fn jump_warning(
    s: &Scenario,
    later: usize,
    earlier: usize,
    jump: &Jump,
    date: jiff::civil::Date,
    end: DateTime,
    a: i32,
    b: i32,
) -> Diagnostic {
    let ts = &s.triggers;
    let hhmm = |c: i32| format!("{:02}:{:02}", c / 3600, c / 60 % 60);
    let (from, until) = (
        jump.start.time().strftime("%H:%M").to_string(),
        end.time().strftime("%H:%M").to_string(),
    );
    Diagnostic::new(
        Code::W0660,
        format!(
            "two triggers of scenario `{}` can fire at the same instant for one contact on the day the clocks go forward",
            s.name.name
        ),
    )
    .at(ts[later].span, "this trigger")
    .also(
        ts[earlier].span,
        format!(
            "fires at the same instant as this one when the clocks go forward in {} (first on {date})",
            jump.zone
        ),
    )
    .help(format!(
        "that day the clocks jump from {from} to {until}: {} does not exist and the runner moves it forward by the jump to {}, when the other trigger fires; a contact enters once whichever fires. Move a trigger out of {from}–{until}, or keep both if one entry that day is fine",
        hhmm(a),
        hhmm(b),
    ))
}

/// Clock seconds after midnight as a time of day.
fn clock_time(clock: i32) -> Option<Time> {
    Time::new((clock / 3600) as i8, (clock / 60 % 60) as i8, 0, 0).ok()
}

#[cfg(test)]
mod tests {
    use super::Dates::*;
    use super::*;

    #[test]
    fn overlaps_follow_the_calendar() {
        let d = |s: &str| s.parse::<jiff::civil::Date>().unwrap();
        assert!(overlap(Month(28), MonthLast));
        assert!(!overlap(Month(27), MonthLast));
        assert!(!overlap(Day(CivilWeekday::Saturday), Weekdays));
        assert!(overlap(Day(CivilWeekday::Friday), Weekdays));
        assert!(overlap(On(d("2026-12-31")), MonthLast));
        assert!(!overlap(On(d("2026-12-05")), Weekdays)); // a Saturday
        assert!(overlap(On(d("2026-12-05")), Month(5)));
        assert!(!overlap(Month(1), Month(2)));
    }

    #[test]
    fn every_jump_is_within_the_bounds_of_the_quick_test() {
        let jumps = every_zone_jumps();
        assert!(jumps.len() > 100, "{}", jumps.len());
        for j in jumps {
            assert!(j.len > 0 && j.len <= i64::from(LONGEST_JUMP), "{}", j.zone);
            let start = i32::from(j.start.hour()) * 3600 + i32::from(j.start.minute()) * 60;
            // Every minute the jump skips.
            for m in (0..j.len as i32).step_by(60) {
                assert!(
                    in_jump_hours((start + m) % 86_400),
                    "{} jumps at {}",
                    j.zone,
                    j.start
                );
            }
        }
    }

    #[test]
    fn paris_jumps_on_the_last_sunday_of_march() {
        let tz = crate::tzdb::zone("Europe/Paris").unwrap();
        let mut jumps = Vec::new();
        jumps_of("Europe/Paris", &tz, &mut jumps);
        assert_eq!(jumps.len(), 28);
        let first = &jumps[0];
        assert_eq!(first.start.to_string(), "2026-03-29T02:00:00");
        assert_eq!(first.len, 3600);
    }
}
