//! The evaluator of plan expressions (§4 semantics) for one contact at a
//! reference time. It is the only evaluator: persona `expect` lines at
//! build time and the runner's segments, waits and exits all go through it,
//! so what a persona proves is what the runner does.

use std::collections::{BTreeMap, BTreeSet};

use crate::plan::{Expr, Plan, Term};

/// A field value of a contact or an event.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Text(String),
    Number(f64),
    Bool(bool),
    /// Unix seconds.
    Timestamp(i64),
    Date(jiff::civil::Date),
    Set(BTreeSet<String>),
}

impl Value {
    /// A short rendering for explanations: `"FR"`, `12`, `2026-01-15`.
    pub fn show(&self) -> String {
        match self {
            Value::Text(s) => format!("{s:?}"),
            Value::Number(n) => show_number(*n),
            Value::Bool(b) => b.to_string(),
            Value::Timestamp(t) => jiff::Timestamp::from_second(*t)
                .map(|t| t.to_string())
                .unwrap_or_default(),
            Value::Date(d) => d.to_string(),
            Value::Set(s) => format!(
                "[{}]",
                s.iter()
                    .map(|x| format!("{x:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

fn show_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

/// A value borrowed from the contact, the event or the plan: evaluating
/// allocates nothing.
#[derive(Clone, Copy, Debug)]
enum V<'a> {
    Text(&'a str),
    Number(f64),
    Bool(bool),
    Timestamp(i64),
    Date(jiff::civil::Date),
    Set(&'a BTreeSet<String>),
}

impl<'a> V<'a> {
    fn of(v: &'a Value) -> V<'a> {
        match v {
            Value::Text(s) => V::Text(s),
            Value::Number(n) => V::Number(*n),
            Value::Bool(b) => V::Bool(*b),
            Value::Timestamp(t) => V::Timestamp(*t),
            Value::Date(d) => V::Date(*d),
            Value::Set(s) => V::Set(s),
        }
    }

    fn owned(self) -> Value {
        match self {
            V::Text(s) => Value::Text(s.to_string()),
            V::Number(n) => Value::Number(n),
            V::Bool(b) => Value::Bool(b),
            V::Timestamp(t) => Value::Timestamp(t),
            V::Date(d) => Value::Date(d),
            V::Set(s) => Value::Set(s.clone()),
        }
    }

    fn time(self) -> Option<i64> {
        match self {
            V::Timestamp(t) => Some(t),
            V::Date(d) => date_start(d),
            _ => None,
        }
    }
}

/// One contact as the evaluator sees it.
#[derive(Clone, Debug, Default)]
pub struct Contact {
    pub id: String,
    pub fields: BTreeMap<String, Value>,
    pub lists: BTreeSet<String>,
    pub tags: BTreeSet<String>,
}

/// Something that happened to the contact: a custom event or a built-in
/// message event (`opened` with `template`, `clicked` with `link`, …).
#[derive(Clone, Debug)]
pub struct Event {
    pub name: String,
    pub at: i64,
    pub fields: BTreeMap<String, Value>,
    /// For message events inside a run: the run they belong to.
    pub run: Option<u64>,
}

/// What an expression is evaluated against.
pub struct Context<'a> {
    pub plan: &'a Plan,
    pub contact: &'a Contact,
    /// The contact's events, in time order.
    pub events: &'a [Event],
    /// The reference time (unix seconds).
    pub now: i64,
    /// The current run, for engagement predicates with `scope: run`.
    pub run: Option<u64>,
}

/// A value that may be absent: absent values make comparisons false.
type Maybe = Option<Value>;

impl Context<'_> {
    pub fn eval(&self, e: &Expr) -> bool {
        self.eval_in(e, None, 0)
    }

    /// `e` with the fields of `event` in scope (a trigger's `where`).
    pub fn eval_for_event(&self, e: &Expr, event: &Event) -> bool {
        self.eval_in(e, Some(event), 0)
    }

    /// The earliest instant after `now` at which `e` may change value with
    /// no new event: when a `14d ago` or `now` bound passes a stored time
    /// (a contact's timestamp or date, an event's time or timestamp field,
    /// a literal). Conservative: the value may also stay the same then.
    /// `None` when `e` does not depend on the passing of time.
    pub fn next_change(&self, e: &Expr) -> Option<i64> {
        let mut best = None;
        self.changes(e, None, 0, &mut best);
        best
    }

    fn offer(&self, at: i64, best: &mut Option<i64>) {
        if at > self.now && best.is_none_or(|b| at < b) {
            *best = Some(at);
        }
    }

    /// The offset before the reference time of a relative term.
    fn relative(t: &Term) -> Option<i64> {
        match t {
            Term::AgoSeconds(d) => Some(*d),
            Term::Now(_) => Some(0),
            _ => None,
        }
    }

    /// `x CMP now - d` flips at `now = x + d`, and one second later for a
    /// strict comparison.
    fn pair(&self, a: &Term, b: &Term, event: Option<&Event>, best: &mut Option<i64>) {
        for (rel, abs) in [(a, b), (b, a)] {
            if let Some(d) = Self::relative(rel)
                && Self::relative(abs).is_none()
                && let Some(x) = self.term(abs, event).and_then(V::time)
            {
                self.offer(x.saturating_add(d), best);
                self.offer(x.saturating_add(d).saturating_add(1), best);
            }
        }
    }

    /// An event at `at` leaves `since now - d` at `at + d + 1`: the first
    /// matching event still inside the window decides (events are in time
    /// order). A literal bound never moves.
    fn since_changes(
        &self,
        since: &Option<Term>,
        matches: impl Fn(&Event) -> bool,
        best: &mut Option<i64>,
    ) {
        if let Some(d) = since.as_ref().and_then(Self::relative) {
            let start = self.events.partition_point(|e| e.at < self.now - d);
            if let Some(ev) = self.events[start..].iter().find(|e| matches(e)) {
                self.offer(ev.at.saturating_add(d).saturating_add(1), best);
            }
        }
    }

    fn changes(&self, e: &Expr, event: Option<&Event>, depth: usize, best: &mut Option<i64>) {
        if depth > 256 {
            return;
        }
        match e {
            Expr::Const { .. } | Expr::List { .. } | Expr::Flag { .. } | Expr::IsSet { .. } => {}
            Expr::And { args } | Expr::Or { args } => {
                for a in args {
                    self.changes(a, event, depth, best);
                }
            }
            Expr::Not { arg } => self.changes(arg, event, depth, best),
            Expr::Segment { name } => {
                if let Some(s) = self.plan.segments.get(name) {
                    self.changes(s, None, depth + 1, best);
                }
            }
            Expr::Compare { left, right, .. } => self.pair(left, right, event, best),
            Expr::Contains { haystack, needle } => self.pair(haystack, needle, event, best),
            Expr::In { value, list } => {
                for t in list {
                    self.pair(value, t, event, best);
                }
            }
            Expr::Engagement {
                event: kind, since, ..
            } => self.since_changes(since, |ev| counts_as(kind, &ev.name), best),
            Expr::Aggregate {
                event: name,
                filter,
                since,
                ..
            } => {
                self.since_changes(since, |ev| ev.name == *name, best);
                // A `where` with an `ago` bound can change for each event.
                if let Some(f) = filter
                    && relative_terms(f)
                {
                    for ev in self.events.iter().filter(|ev| ev.name == *name) {
                        self.changes(f, Some(ev), depth, best);
                    }
                }
            }
        }
    }

    /// `event`: inside an aggregate's `where`, the event being filtered.
    fn eval_in(&self, e: &Expr, event: Option<&Event>, depth: usize) -> bool {
        // Segments are acyclic (E0307); the bound only guards hand-made plans.
        if depth > 256 {
            return false;
        }
        match e {
            Expr::Const { value } => *value,
            // Expressions are pure, so the cheap parts go first: a list
            // membership settles an `and` before an aggregate scans events.
            Expr::And { args } => {
                args.iter()
                    .filter(|a| !costly(a))
                    .all(|a| self.eval_in(a, event, depth))
                    && args
                        .iter()
                        .filter(|a| costly(a))
                        .all(|a| self.eval_in(a, event, depth))
            }
            Expr::Or { args } => {
                args.iter()
                    .filter(|a| !costly(a))
                    .any(|a| self.eval_in(a, event, depth))
                    || args
                        .iter()
                        .filter(|a| costly(a))
                        .any(|a| self.eval_in(a, event, depth))
            }
            Expr::Not { arg } => !self.eval_in(arg, event, depth),
            Expr::Segment { name } => self
                .plan
                .segments
                .get(name)
                .is_some_and(|s| self.eval_in(s, None, depth + 1)),
            Expr::List { name } => self.contact.lists.contains(name),
            Expr::Flag { value } => matches!(self.term(value, event), Some(V::Bool(true))),
            Expr::Compare { cmp, left, right } => {
                compare_v(cmp, self.term(left, event), self.term(right, event))
            }
            Expr::In { value, list } => {
                let v = self.term(value, event);
                v.is_some() && list.iter().any(|t| compare_v("==", v, self.term(t, event)))
            }
            Expr::Contains { haystack, needle } => {
                match (self.term(haystack, event), self.term(needle, event)) {
                    (Some(V::Set(s)), Some(V::Text(n))) => s.contains(n),
                    (Some(V::Text(h)), Some(V::Text(n))) => h.contains(n),
                    _ => false,
                }
            }
            Expr::IsSet { value } => self.term(value, event).is_some(),
            Expr::Engagement { .. } => self.engaged(e).is_some(),
            Expr::Aggregate { cmp, value, .. } => {
                let got = self.aggregate(e).map(V::Number);
                compare_v(cmp, got, self.term(value, event))
            }
        }
    }

    /// The latest matching engagement event's time, if any.
    fn engaged(&self, e: &Expr) -> Option<i64> {
        let Expr::Engagement {
            event: kind,
            template,
            link,
            since,
            scope,
        } = e
        else {
            return None;
        };
        let has = |ev: &Event, f: &str, want: &Option<String>| {
            want.as_ref()
                .is_none_or(|w| matches!(ev.fields.get(f), Some(Value::Text(s)) if s == w))
        };
        // Events are in time order: the latest match is the first from the end.
        self.since(since)
            .iter()
            .rev()
            .filter(|ev| counts_as(kind, &ev.name))
            .filter(|ev| has(ev, "template", template) && has(ev, "link", link))
            .find(|ev| scope != "run" || ev.run == self.run)
            .map(|ev| ev.at)
    }

    /// The events at or after the `since` bound (all without one): a
    /// binary search, the events being in time order.
    fn since(&self, since: &Option<Term>) -> &[Event] {
        match since
            .as_ref()
            .and_then(|t| self.term(t, None))
            .and_then(V::time)
        {
            Some(s) => &self.events[self.events.partition_point(|e| e.at < s)..],
            None => self.events,
        }
    }

    /// `count`/`sum`/`min`/`max`/`avg` over the matching events; `None`
    /// when an average, minimum or maximum has no events.
    fn aggregate(&self, e: &Expr) -> Option<f64> {
        let Expr::Aggregate {
            function,
            event,
            field,
            filter,
            since,
            ..
        } = e
        else {
            return None;
        };
        let matching = self
            .since(since)
            .iter()
            .filter(|ev| ev.name == *event)
            .filter(|ev| filter.as_ref().is_none_or(|f| self.eval_in(f, Some(ev), 0)));
        if function == "count" {
            return Some(matching.count() as f64);
        }
        let values: Vec<f64> = matching
            .filter_map(|ev| match field.as_ref().and_then(|f| ev.fields.get(f)) {
                Some(Value::Number(n)) => Some(*n),
                _ => None,
            })
            .collect();
        match function.as_str() {
            "sum" => Some(values.iter().sum()),
            "min" => values.iter().copied().reduce(f64::min),
            "max" => values.iter().copied().reduce(f64::max),
            _ => (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64),
        }
    }

    fn term<'s>(&'s self, t: &'s Term, event: Option<&'s Event>) -> Option<V<'s>> {
        match t {
            Term::Field(name) => match name.as_str() {
                "id" => Some(V::Text(&self.contact.id)),
                "tags" => Some(V::Set(&self.contact.tags)),
                _ => self.contact.fields.get(name).map(V::of),
            },
            Term::EventField(name) => event.and_then(|ev| ev.fields.get(name)).map(V::of),
            Term::Text(s) | Term::Variant(s) => Some(V::Text(s)),
            Term::Number(n) => Some(V::Number(*n)),
            Term::Bool(b) => Some(V::Bool(*b)),
            Term::Timestamp(s) => s
                .parse::<jiff::Timestamp>()
                .ok()
                .map(|t| V::Timestamp(t.as_second())),
            Term::Date(s) => s.parse::<jiff::civil::Date>().ok().map(V::Date),
            Term::AgoSeconds(d) => Some(V::Timestamp(self.now - d)),
            Term::Now(_) => Some(V::Timestamp(self.now)),
        }
    }

    /// Why `e` does not hold, in words with the values involved; `None`
    /// when it holds.
    pub fn why_not(&self, e: &Expr) -> Option<String> {
        if self.eval(e) {
            return None;
        }
        Some(match e {
            Expr::And { args } => args
                .iter()
                .find_map(|a| self.why_not(a))
                .unwrap_or_default(),
            Expr::Or { args } => {
                let parts: Vec<String> = args.iter().filter_map(|a| self.why_not(a)).collect();
                format!("none of the alternatives holds: {}", parts.join("; "))
            }
            Expr::Not { arg } => format!("{} holds", self.show(arg)),
            Expr::Const { .. } => "the condition is `false`".to_string(),
            Expr::Segment { name } => {
                match self.plan.segments.get(name).and_then(|s| self.why_not(s)) {
                    Some(inner) => format!("segment `{name}` does not hold: {inner}"),
                    None => format!("segment `{name}` does not hold"),
                }
            }
            Expr::List { name } => format!("the persona is not in list `{name}`"),
            Expr::Flag { value } => {
                format!("{} is {}", self.show_term(value), self.value_of(value))
            }
            Expr::Compare { cmp, left, right } => {
                let (l, lv, r) = (
                    self.show_term(left),
                    self.value_of(left),
                    self.show_term(right),
                );
                match cmp.as_str() {
                    "==" => format!("{l} is {lv}, not {r}"),
                    "!=" => format!("{l} is {lv}"),
                    _ => format!("{l} is {lv}, which is not {cmp} {r}"),
                }
            }
            Expr::In { value, .. } => format!(
                "{} is {}, which is not in the list",
                self.show_term(value),
                self.value_of(value)
            ),
            Expr::Contains { haystack, needle } => format!(
                "{} is {}, which does not contain {}",
                self.show_term(haystack),
                self.value_of(haystack),
                self.show_term(needle)
            ),
            Expr::IsSet { value } => format!("{} is not set", self.show_term(value)),
            Expr::Engagement { .. } => format!("the persona has no event for {}", self.show(e)),
            Expr::Aggregate { cmp, value, .. } => match self.aggregate(e) {
                Some(n) => format!(
                    "{} is {}, so `{cmp} {}` is false",
                    self.show(e),
                    show_number(n),
                    self.show_term(value)
                ),
                None => format!("{} has no events to aggregate", self.show(e)),
            },
        })
    }

    fn value_of(&self, t: &Term) -> String {
        match self.term(t, None) {
            Some(v) => v.owned().show(),
            None => "not set".to_string(),
        }
    }

    fn show_term(&self, t: &Term) -> String {
        match t {
            Term::Field(f) => format!("`{f}`"),
            Term::EventField(f) => format!("the event's `{f}`"),
            Term::AgoSeconds(_) | Term::Now(_) => self
                .term(t, None)
                .map(|v| v.owned().show())
                .unwrap_or_default(),
            other => self
                .term(other, None)
                .map(|v| v.owned().show())
                .unwrap_or_default(),
        }
    }

    fn show(&self, e: &Expr) -> String {
        match e {
            Expr::Segment { name } | Expr::List { name } => format!("`{name}`"),
            Expr::Engagement {
                event,
                template,
                link,
                ..
            } => {
                let target = match (template, link) {
                    (Some(t), Some(l)) => format!("{t}.{l}"),
                    (Some(t), None) => t.clone(),
                    _ => "any".to_string(),
                };
                format!("`{event}({target})`")
            }
            Expr::Aggregate {
                function,
                event,
                field,
                ..
            } => match field {
                Some(f) => format!("`{function}({event}.{f})`"),
                None => format!("`{function}({event})`"),
            },
            other => format!("the condition `{}`", short(other)),
        }
    }
}

fn short(e: &Expr) -> &'static str {
    match e {
        Expr::Compare { .. } => "comparison",
        Expr::And { .. } => "and",
        Expr::Or { .. } => "or",
        _ => "…",
    }
}

/// Whether an event named `name` counts for an engagement predicate on
/// `kind`: a click counts as an open of the same message.
fn counts_as(kind: &str, name: &str) -> bool {
    name == kind || (kind == "opened" && name == "clicked")
}

/// Whether evaluating `e` may scan events or another segment (a shallow
/// look: cheap to ask on every evaluation).
fn costly(e: &Expr) -> bool {
    match e {
        Expr::Not { arg } => costly(arg),
        Expr::Aggregate { .. } | Expr::Engagement { .. } | Expr::Segment { .. } => true,
        _ => false,
    }
}

/// Whether `e` (a `where` filter: no segments inside) holds an `ago` or
/// `now` term.
fn relative_terms(e: &Expr) -> bool {
    let rel = |t: &Term| matches!(t, Term::AgoSeconds(_) | Term::Now(_));
    match e {
        Expr::And { args } | Expr::Or { args } => args.iter().any(relative_terms),
        Expr::Not { arg } => relative_terms(arg),
        Expr::Compare { left, right, .. } => rel(left) || rel(right),
        Expr::Contains { haystack, needle } => rel(haystack) || rel(needle),
        Expr::In { value, list } => rel(value) || list.iter().any(rel),
        Expr::Engagement { .. } | Expr::Aggregate { .. } | Expr::Segment { .. } => true,
        Expr::Const { .. } | Expr::List { .. } | Expr::Flag { .. } | Expr::IsSet { .. } => false,
    }
}

/// A date compared with a timestamp stands for its first second, in UTC.
pub fn date_start(d: jiff::civil::Date) -> Option<i64> {
    d.to_zoned(jiff::tz::TimeZone::UTC)
        .ok()
        .map(|z| z.timestamp().as_second())
}

/// `left cmp right`; absent values make every comparison false.
pub fn compare(cmp: &str, left: &Maybe, right: &Maybe) -> bool {
    compare_v(cmp, left.as_ref().map(V::of), right.as_ref().map(V::of))
}

fn compare_v(cmp: &str, left: Option<V>, right: Option<V>) -> bool {
    use std::cmp::Ordering;
    let (Some(l), Some(r)) = (left, right) else {
        return false;
    };
    let ord: Option<Ordering> = match (l, r) {
        (V::Number(a), V::Number(b)) => a.partial_cmp(&b),
        (V::Text(a), V::Text(b)) => Some(a.cmp(b)),
        (V::Bool(a), V::Bool(b)) => Some(a.cmp(&b)),
        (V::Date(a), V::Date(b)) => Some(a.cmp(&b)),
        (V::Timestamp(_) | V::Date(_), V::Timestamp(_) | V::Date(_)) => {
            match (l.time(), r.time()) {
                (Some(a), Some(b)) => Some(a.cmp(&b)),
                _ => None,
            }
        }
        _ => None,
    };
    let Some(ord) = ord else { return false };
    match cmp {
        "==" => ord == Ordering::Equal,
        "!=" => ord != Ordering::Equal,
        "<" => ord == Ordering::Less,
        "<=" => ord != Ordering::Greater,
        ">" => ord == Ordering::Greater,
        ">=" => ord != Ordering::Less,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostics::{Problems, SourceFile, SourceMap};

    /// A plan from source, and a context for `contact` and `events`.
    fn plan(src: &str) -> Plan {
        let mut sources = SourceMap::new();
        sources.add(SourceFile::new("t.camp", src));
        let checked = crate::driver::check_sources(&sources, Problems::new(), 1);
        assert_eq!(checked.errors(), 0, "{:?}", checked.diagnostics);
        crate::plan::build_plan(&sources, &checked.files, &BTreeMap::new())
    }

    const NOW: i64 = 1_800_000_000;

    fn holds(plan: &Plan, segment: &str, contact: &Contact, events: &[Event]) -> bool {
        let cx = Context {
            plan,
            contact,
            events,
            now: NOW,
            run: None,
        };
        cx.eval(&plan.segments[segment])
    }

    fn event(name: &str, at: i64, fields: &[(&str, Value)]) -> Event {
        Event {
            name: name.to_string(),
            at,
            fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            run: None,
        }
    }

    const SRC: &str = r#"
contact { email: email, phone: phone?, ltv: number?, plan: enum(free, pro) }
event purchase { amount: number }
template offer : task { body = "call" }
segment has_phone = phone is set
segment no_phone_match = phone == "+33600000000"
segment rich = ltv > 100
segment pros = plan == pro
segment opened_offer = opened(offer since 7d ago)
segment big = sum(purchase.amount since 30d ago) > 500
segment avg_high = avg(purchase.amount) > 10
segment few = count(purchase where amount > 100) < 2
"#;

    #[test]
    fn absent_values_make_comparisons_false() {
        let p = plan(SRC);
        let c = Contact::default();
        assert!(!holds(&p, "has_phone", &c, &[]));
        assert!(!holds(&p, "no_phone_match", &c, &[]));
        assert!(!holds(&p, "rich", &c, &[]));
        let mut rich = Contact::default();
        rich.fields.insert("ltv".into(), Value::Number(150.0));
        rich.fields.insert("plan".into(), Value::Text("pro".into()));
        assert!(holds(&p, "rich", &rich, &[]));
        assert!(holds(&p, "pros", &rich, &[]));
    }

    #[test]
    fn a_click_counts_as_an_open_within_since() {
        let p = plan(SRC);
        let c = Contact::default();
        let click = event(
            "clicked",
            NOW - 86_400,
            &[
                ("template", Value::Text("offer".into())),
                ("link", Value::Text("gps".into())),
            ],
        );
        assert!(holds(&p, "opened_offer", &c, &[click]));
        let old = event(
            "opened",
            NOW - 30 * 86_400,
            &[("template", Value::Text("offer".into()))],
        );
        assert!(!holds(&p, "opened_offer", &c, &[old]));
    }

    #[test]
    fn aggregates_over_no_events() {
        let p = plan(SRC);
        let c = Contact::default();
        assert!(!holds(&p, "big", &c, &[]));
        assert!(!holds(&p, "avg_high", &c, &[]), "avg of nothing is absent");
        assert!(holds(&p, "few", &c, &[]), "count of nothing is 0");
        let buys = [
            event(
                "purchase",
                NOW - 86_400,
                &[("amount", Value::Number(400.0))],
            ),
            event(
                "purchase",
                NOW - 2 * 86_400,
                &[("amount", Value::Number(200.0))],
            ),
            event(
                "purchase",
                NOW - 90 * 86_400,
                &[("amount", Value::Number(999.0))],
            ),
        ];
        assert!(holds(&p, "big", &c, &buys));
        assert!(!holds(&p, "few", &c, &buys), "three purchases over 100");
    }

    #[test]
    fn why_not_names_the_values() {
        let p = plan(SRC);
        let c = Contact::default();
        let cx = Context {
            plan: &p,
            contact: &c,
            events: &[],
            now: NOW,
            run: None,
        };
        let why = cx.why_not(&p.segments["rich"]).unwrap_or_default();
        assert!(why.contains("`ltv` is not set"), "{why}");
        assert_eq!(cx.why_not(&Expr::Const { value: true }), None);
    }

    #[test]
    fn dates_compare_with_timestamps_at_utc_midnight() {
        let d = Some(Value::Date(jiff::civil::date(2026, 1, 15)));
        let t = Some(Value::Timestamp(1_768_435_200)); // 2026-01-15T00:00:00Z
        assert!(compare("==", &d, &t));
        assert!(compare("<", &d, &Some(Value::Timestamp(1_768_435_201))));
        assert!(!compare("==", &None, &None));
    }
}
