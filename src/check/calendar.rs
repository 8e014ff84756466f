//! v1.1 scenario additions: several triggers (a warning when two of them
//! can fire at the same instant for one contact) and goals with a
//! condition, a value or a list (`goal joined LIST within D`).

use jiff::civil::Weekday as CivilWeekday;

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

/// Whether some local date is in both sets. Every weekday falls on every
/// day of the month some month, and day 28 is the last one in a February
/// of a common year.
fn overlap(a: Dates, b: Dates) -> bool {
    use Dates::*;
    let on = |d: jiff::civil::Date, x: Dates| match x {
        Every => true,
        Day(w) => d.weekday() == w,
        Weekdays => is_weekday(d.weekday()),
        Month(n) => d.day() == n as i8,
        MonthLast => d.tomorrow().is_ok_and(|t| t.day() == 1),
        On(e) => d == e,
    };
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
pub fn check_coinciding_triggers(s: &Scenario, problems: &mut Problems) {
    use std::collections::HashMap;
    let ts: &[Spanned<Trigger>] = &s.triggers;
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
}
