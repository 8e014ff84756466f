//! The evaluator of plan expressions (§4 semantics) for one contact at a
//! reference time. It is the only evaluator: persona `expect` lines at
//! build time and the runner's segments, waits and exits all go through it,
//! so what a persona proves is what the runner does.

pub mod text;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

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
#[derive(Clone, Debug, Default, PartialEq)]
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

impl<'a> Context<'a> {
    pub fn eval(&self, e: &Expr) -> bool {
        self.eval_in(e, None, 0, &mut Memo::default())
    }

    /// `e` with the fields of `event` in scope (a trigger's `where`).
    pub fn eval_for_event(&self, e: &Expr, event: &Event) -> bool {
        self.eval_in(e, Some(event), 0, &mut Memo::default())
    }

    /// The earliest instant after `now` at which `e` may change value with
    /// no new event: when a `14d ago` or `now` bound passes a stored time
    /// (a contact's timestamp or date, an event's time or timestamp field,
    /// a literal). Conservative: the value may also stay the same then.
    /// `None` when `e` does not depend on the passing of time.
    pub fn next_change(&self, e: &Expr) -> Option<i64> {
        let mut best = None;
        self.changes(e, None, 0, &mut HashSet::new(), &mut best);
        best
    }

    fn offer(&self, at: i64, best: &mut Option<i64>) {
        if at > self.now && best.is_none_or(|b| at < b) {
            *best = Some(at);
        }
    }

    /// The offset before the reference time of a relative term (`now +
    /// 7d` is 7 days before… negative: after).
    fn relative(t: &Term) -> Option<i64> {
        match t {
            Term::AgoSeconds(d) => Some(*d),
            Term::Now(_) => Some(0),
            Term::Offset { term, seconds } => Self::relative(term)?.checked_sub(*seconds),
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

    /// `seen`: the segments already walked (their instants are offered
    /// once, so segments that reuse each other cost one walk each).
    fn changes(
        &self,
        e: &Expr,
        event: Option<&Event>,
        depth: usize,
        seen: &mut HashSet<&'a str>,
        best: &mut Option<i64>,
    ) {
        if !within_depth(depth) {
            return;
        }
        match e {
            Expr::Const { .. }
            | Expr::List { .. }
            | Expr::Flag { .. }
            | Expr::IsSet { .. }
            | Expr::StartsWith { .. }
            | Expr::EndsWith { .. }
            | Expr::Matches { .. } => {}
            Expr::And { args } | Expr::Or { args } => {
                for a in args {
                    self.changes(a, event, depth, seen, best);
                }
            }
            Expr::Not { arg } => self.changes(arg, event, depth, seen, best),
            Expr::Segment { name } => {
                if let Some((name, s)) = self.plan.segments.get_key_value(name)
                    && seen.insert(name.as_str())
                {
                    self.changes(s, None, depth + 1, seen, best);
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
                        // Segments inside `where` read the contact only.
                        let mut fresh = seen.clone();
                        self.changes(f, Some(ev), depth, &mut fresh, best);
                    }
                }
            }
        }
    }

    /// `event`: inside an aggregate's `where`, the event being filtered.
    /// `depth`: segments entered so far. `memo`: the segments already
    /// evaluated in this evaluation (a segment reads the contact only, so
    /// its value holds for the whole evaluation, `where` filters included).
    fn eval_in(&self, e: &Expr, event: Option<&Event>, depth: usize, memo: &mut Memo<'a>) -> bool {
        if !within_depth(depth) {
            return false;
        }
        match e {
            Expr::Const { value } => *value,
            // Expressions are pure, so the cheap parts go first: a list
            // membership settles an `and` before an aggregate scans events.
            Expr::And { args } => {
                args.iter()
                    .filter(|a| !costly(a))
                    .all(|a| self.eval_in(a, event, depth, memo))
                    && args
                        .iter()
                        .filter(|a| costly(a))
                        .all(|a| self.eval_in(a, event, depth, memo))
            }
            Expr::Or { args } => {
                args.iter()
                    .filter(|a| !costly(a))
                    .any(|a| self.eval_in(a, event, depth, memo))
                    || args
                        .iter()
                        .filter(|a| costly(a))
                        .any(|a| self.eval_in(a, event, depth, memo))
            }
            Expr::Not { arg } => !self.eval_in(arg, event, depth, memo),
            Expr::Segment { name } => {
                let Some((name, s)) = self.plan.segments.get_key_value(name) else {
                    return false;
                };
                if let Some(v) = memo.get(name.as_str()) {
                    return v;
                }
                let v = self.eval_in(s, None, depth + 1, memo);
                memo.insert(name.as_str(), v);
                v
            }
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
                let got = self.aggregate(e, depth, memo).map(V::Number);
                compare_v(cmp, got, self.term(value, event))
            }
            Expr::StartsWith { value, prefix } => {
                match (self.term(value, event), self.term(prefix, event)) {
                    (Some(V::Text(v)), Some(V::Text(p))) => v.starts_with(p),
                    _ => false,
                }
            }
            Expr::EndsWith { value, suffix } => {
                match (self.term(value, event), self.term(suffix, event)) {
                    (Some(V::Text(v)), Some(V::Text(s))) => v.ends_with(s),
                    _ => false,
                }
            }
            Expr::Matches { value, pattern } => match self.term(value, event) {
                Some(V::Text(v)) => self.plan.patterns.is_match(self.plan, pattern, v),
                _ => false,
            },
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
    fn aggregate(&self, e: &Expr, depth: usize, memo: &mut Memo<'a>) -> Option<f64> {
        let Expr::Aggregate {
            function,
            event,
            field,
            filter,
            since,
            distinct,
            ..
        } = e
        else {
            return None;
        };
        let matching = self
            .since(since)
            .iter()
            .filter(|ev| ev.name == *event)
            .filter(|ev| {
                filter
                    .as_ref()
                    .is_none_or(|f| self.eval_in(f, Some(ev), depth, memo))
            });
        if *distinct {
            // The distinct present values of the field (a field has one
            // type, so its variant and value identify a value).
            let mut seen: HashSet<String> = HashSet::new();
            for ev in matching {
                if let Some(v) = field.as_ref().and_then(|f| ev.fields.get(f)) {
                    seen.insert(distinct_key(v));
                }
            }
            return Some(seen.len() as f64);
        }
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
            Term::Offset { term, seconds } => shift(self.term(term, event)?, *seconds),
        }
    }

    /// The point in time `t` gives for this contact: an instant, or a
    /// calendar date (a date moved by whole days); `None` when absent or
    /// not a time.
    pub fn time_value(&self, t: &Term) -> Option<crate::syntax::ast::TimeValue> {
        use crate::syntax::ast::TimeValue;
        match self.term(t, None)? {
            V::Timestamp(x) => Some(TimeValue::Instant(x)),
            V::Date(d) => Some(TimeValue::Date(d)),
            _ => None,
        }
    }

    /// Why `e` does not hold, in words with the values involved; `None`
    /// when it holds.
    pub fn why_not(&self, e: &Expr) -> Option<String> {
        let mut memo = Memo::default();
        let mut explained = HashSet::new();
        self.why_not_in(e, 0, &mut memo, &mut explained)
    }

    /// `level`: segments entered so far; past [`EXPLAIN_SEGMENTS`] the
    /// explanation names the segment and stops. `explained`: segments
    /// already explained (a segment reused on two sides is explained once).
    fn why_not_in(
        &self,
        e: &Expr,
        level: usize,
        memo: &mut Memo<'a>,
        explained: &mut HashSet<&'a str>,
    ) -> Option<String> {
        if self.eval_in(e, None, 0, memo) {
            return None;
        }
        Some(match e {
            Expr::And { args } => args
                .iter()
                .find_map(|a| self.why_not_in(a, level, memo, explained))
                .unwrap_or_default(),
            Expr::Or { args } => {
                let parts: Vec<String> = args
                    .iter()
                    .filter_map(|a| self.why_not_in(a, level, memo, explained))
                    .collect();
                format!("none of the alternatives holds: {}", parts.join("; "))
            }
            Expr::Not { arg } => match &**arg {
                // `not email_opt_out`: name the field and its value.
                Expr::Flag { value } => {
                    format!("{} is {}", self.show_term(value), self.value_of(value))
                }
                other => format!("{} holds", self.show(other)),
            },
            Expr::Const { .. } => "the condition is `false`".to_string(),
            Expr::Segment { name } => {
                let inner = match self.plan.segments.get_key_value(name) {
                    Some((key, s))
                        if level < EXPLAIN_SEGMENTS && explained.insert(key.as_str()) =>
                    {
                        self.why_not_in(s, level + 1, memo, explained)
                    }
                    _ => None,
                };
                match inner {
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
            Expr::StartsWith { value, prefix: arg } | Expr::EndsWith { value, suffix: arg } => {
                let verb = if matches!(e, Expr::StartsWith { .. }) {
                    "start"
                } else {
                    "end"
                };
                format!(
                    "{} is {}, which does not {verb} with {}",
                    self.show_term(value),
                    self.value_of(value),
                    self.show_term(arg)
                )
            }
            Expr::Matches { value, pattern } => format!(
                "{} is {}, which does not match {pattern:?}",
                self.show_term(value),
                self.value_of(value)
            ),
            Expr::Engagement { .. } => format!("the persona has no event for {}", self.show(e)),
            Expr::Aggregate { cmp, value, .. } => match self.aggregate(e, 0, memo) {
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
            Term::Offset { .. } if Self::relative(t).is_none() => {
                format!("`{}`", crate::render::term_text(t))
            }
            Term::AgoSeconds(_) | Term::Now(_) | Term::Offset { .. } => self
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
                distinct: true,
                ..
            } => format!(
                "`{function} distinct({event}.{})`",
                field.as_deref().unwrap_or_default()
            ),
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

/// The deepest nesting of conditions the evaluator accepts, counting each
/// `and`, `or`, `not`, `where` and segment reference as one level, with
/// segments expanded: `segment b = a and x` is one level deeper than `a`.
/// The checker refuses a deeper segment (E0020) and the runner a plan that
/// holds one, so every evaluation stays within a bounded stack and no
/// limit ever answers in the evaluator's place.
pub const MAX_CONDITION_DEPTH: usize = 256;

/// Segment levels an explanation (`why_not`) follows before it stops.
const EXPLAIN_SEGMENTS: usize = 8;

/// Segment values computed during one evaluation. Most evaluations meet a
/// few segments: a short list, searched in order, costs less than hashing;
/// past [`Memo::SHORT`] entries (diamonds, long chains) a map keeps it linear.
#[derive(Default)]
struct Memo<'a> {
    short: Vec<(&'a str, bool)>,
    long: HashMap<&'a str, bool>,
}

impl<'a> Memo<'a> {
    const SHORT: usize = 16;

    fn get(&self, name: &str) -> Option<bool> {
        if self.long.is_empty() {
            self.short.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
        } else {
            self.long.get(name).copied()
        }
    }

    fn insert(&mut self, name: &'a str, value: bool) {
        if !self.long.is_empty() {
            self.long.insert(name, value);
        } else if self.short.len() < Self::SHORT {
            self.short.push((name, value));
        } else {
            self.long.extend(self.short.drain(..));
            self.long.insert(name, value);
        }
    }
}

/// A validated plan never nests more than [`MAX_CONDITION_DEPTH`]
/// segments (each adds at least one level), so this guard never fires for
/// one: `check` refuses such a project (E0020) and `relance run` such a
/// plan ([`check_depth`]). It only keeps a caller that skipped validation
/// from overflowing the stack (debug builds stop there, to find it).
fn within_depth(depth: usize) -> bool {
    debug_assert!(
        depth <= MAX_CONDITION_DEPTH,
        "conditions nest deeper than {MAX_CONDITION_DEPTH} levels: the plan was not validated (eval::check_depth)"
    );
    depth <= MAX_CONDITION_DEPTH
}

/// The nesting depth of every segment of `plan` (segments expanded), or
/// the first problem: a segment deeper than [`MAX_CONDITION_DEPTH`], a
/// reference to a segment the plan does not define, or a cycle. Iterative
/// and memoised: linear in the size of the plan's segments.
pub fn check_depth(plan: &Plan) -> Result<(), String> {
    let mut depth: HashMap<&str, usize> = HashMap::new();
    let mut on_stack: HashSet<&str> = HashSet::new();
    for root in plan.segments.keys() {
        if depth.contains_key(root.as_str()) {
            continue;
        }
        // (segment, whether its references were pushed)
        let mut stack: Vec<(&str, bool)> = vec![(root, false)];
        while let Some((name, expanded)) = stack.pop() {
            if depth.contains_key(name) {
                continue;
            }
            let Some(e) = plan.segments.get(name) else {
                return Err(format!(
                    "the plan names a segment `{name}` it does not define"
                ));
            };
            if expanded {
                on_stack.remove(name);
                let d = expr_depth(e, &depth);
                if d > MAX_CONDITION_DEPTH {
                    return Err(format!(
                        "segment `{name}` nests {d} levels of conditions (segments expanded); the limit is {MAX_CONDITION_DEPTH}"
                    ));
                }
                depth.insert(name, d);
                continue;
            }
            if !on_stack.insert(name) {
                return Err(format!(
                    "segment `{name}` refers to itself through other segments"
                ));
            }
            stack.push((name, true));
            let mut refs = Vec::new();
            segment_refs(e, &mut refs);
            for r in refs {
                if !depth.contains_key(r) {
                    if on_stack.contains(r) {
                        return Err(format!(
                            "segment `{r}` refers to itself through other segments"
                        ));
                    }
                    if !plan.segments.contains_key(r) {
                        return Err(format!("the plan names a segment `{r}` it does not define"));
                    }
                    stack.push((r, false));
                }
            }
        }
    }
    Ok(())
}

/// The segments `e` names (its own tree only: no recursion into them).
fn segment_refs<'e>(e: &'e Expr, out: &mut Vec<&'e str>) {
    match e {
        Expr::And { args } | Expr::Or { args } => args.iter().for_each(|a| segment_refs(a, out)),
        Expr::Not { arg } => segment_refs(arg, out),
        Expr::Segment { name } => out.push(name),
        Expr::Aggregate {
            filter: Some(f), ..
        } => segment_refs(f, out),
        _ => {}
    }
}

/// The depth of `e`, with the depths of the segments it names known.
fn expr_depth(e: &Expr, segments: &HashMap<&str, usize>) -> usize {
    match e {
        Expr::And { args } | Expr::Or { args } => {
            1 + args
                .iter()
                .map(|a| expr_depth(a, segments))
                .max()
                .unwrap_or(0)
        }
        Expr::Not { arg } => 1 + expr_depth(arg, segments),
        Expr::Segment { name } => 1 + segments.get(name.as_str()).copied().unwrap_or(0),
        Expr::Aggregate {
            filter: Some(f), ..
        } => 1 + expr_depth(f, segments),
        _ => 1,
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
    let rel = |t: &Term| Context::relative(t).is_some();
    match e {
        Expr::And { args } | Expr::Or { args } => args.iter().any(relative_terms),
        Expr::Not { arg } => relative_terms(arg),
        Expr::Compare { left, right, .. } => rel(left) || rel(right),
        Expr::Contains { haystack, needle } => rel(haystack) || rel(needle),
        Expr::In { value, list } => rel(value) || list.iter().any(rel),
        Expr::Engagement { .. } | Expr::Aggregate { .. } | Expr::Segment { .. } => true,
        Expr::StartsWith { value, prefix: t } | Expr::EndsWith { value, suffix: t } => {
            rel(value) || rel(t)
        }
        Expr::Const { .. }
        | Expr::List { .. }
        | Expr::Flag { .. }
        | Expr::IsSet { .. }
        | Expr::Matches { .. } => false,
    }
}

/// A value as a key for `count distinct`: the variant and the value.
fn distinct_key(v: &Value) -> String {
    match v {
        // 0 and -0 are one value.
        Value::Number(n) if *n == 0.0 => "Number(0)".to_string(),
        other => format!("{other:?}"),
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

/// A time value moved by `seconds`: a date moved by whole days stays a
/// date, by anything else it becomes its UTC midnight moved (as dates
/// compare with timestamps); `None` for a value that is not a time.
fn shift(v: V<'_>, seconds: i64) -> Option<V<'_>> {
    use crate::syntax::ast::TimeValue;
    let t = match v {
        V::Timestamp(x) => TimeValue::Instant(x),
        V::Date(d) => TimeValue::Date(d),
        _ => return None,
    };
    Some(match t.shifted(seconds)? {
        TimeValue::Instant(x) => V::Timestamp(x),
        TimeValue::Date(d) => V::Date(d),
    })
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
contact { email: email, phone: phone?, ltv: number?, plan: enum(free, pro), opted_out: bool }
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
segment mailable = not opted_out
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
        // `not FLAG` names the field and its value (it said "the condition
        // `…` holds").
        let mut out = Contact::default();
        out.fields.insert("opted_out".into(), Value::Bool(true));
        let cx = Context {
            contact: &out,
            ..cx
        };
        let why = cx.why_not(&p.segments["mailable"]).unwrap_or_default();
        assert_eq!(why, "`opted_out` is true");
    }

    #[test]
    fn dates_compare_with_timestamps_at_utc_midnight() {
        let d = Some(Value::Date(jiff::civil::date(2026, 1, 15)));
        let t = Some(Value::Timestamp(1_768_435_200)); // 2026-01-15T00:00:00Z
        assert!(compare("==", &d, &t));
        assert!(compare("<", &d, &Some(Value::Timestamp(1_768_435_201))));
        assert!(!compare("==", &None, &None));
    }

    /// `s0 = country == "FR"`, then `s{i} = s{i-1}` up to `s{n-1}`.
    fn chain(n: usize) -> String {
        let mut src = String::from(
            "contact { email: email, country: text }\nsegment s0 = country == \"FR\"\n",
        );
        for i in 1..n {
            src.push_str(&format!("segment s{i} = s{}\n", i - 1));
        }
        src
    }

    #[test]
    fn a_chain_within_the_limit_gives_the_true_answer() {
        // 250 segments: past the old silent cut-off (256 levels counted
        // from the `not` of an audience), within the limit.
        let p = plan(&chain(250));
        assert_eq!(check_depth(&p), Ok(()));
        let mut fr = Contact::default();
        fr.fields.insert("country".into(), Value::Text("FR".into()));
        assert!(holds(&p, "s249", &fr, &[]));
        let cx = Context {
            plan: &p,
            contact: &fr,
            events: &[],
            now: NOW,
            run: None,
        };
        let excluded = Expr::Not {
            arg: Box::new(Expr::Segment {
                name: "s249".into(),
            }),
        };
        assert!(!cx.eval(&excluded), "the audience `not s249` excludes them");
        assert_eq!(cx.why_not(&p.segments["s249"]), None);
    }

    #[test]
    fn a_plan_deeper_than_the_limit_is_refused_not_cut_off() {
        let mut p = plan(&chain(250));
        for i in 250..300 {
            p.segments.insert(
                format!("s{i}"),
                Expr::Segment {
                    name: format!("s{}", i - 1),
                },
            );
        }
        let err = check_depth(&p).unwrap_err();
        assert!(err.contains("the limit is 256"), "{err}");
        p.segments.insert(
            "loop".into(),
            Expr::Segment {
                name: "loop".into(),
            },
        );
        p.segments.retain(|n, _| n == "loop" || n == "s0");
        assert!(check_depth(&p).unwrap_err().contains("refers to itself"));
        p.segments.insert(
            "dangling".into(),
            Expr::Segment {
                name: "nowhere".into(),
            },
        );
        p.segments.remove("loop");
        assert!(check_depth(&p).unwrap_err().contains("`nowhere`"));
    }

    #[test]
    fn a_diamond_of_segments_is_evaluated_once_per_segment() {
        // `d{i} = d{i-1} and d{i-1}` for 60 levels: 2^60 walks without the
        // memo. `why_not` and `next_change` walk each segment once too.
        let mut src = String::from(
            "contact { email: email, country: text, seen: timestamp }\nsegment d0 = country == \"FR\" and seen > 3d ago\n",
        );
        for i in 1..60 {
            let op = if i % 2 == 0 { "and" } else { "or" };
            src.push_str(&format!("segment d{i} = d{0} {op} d{0}\n", i - 1));
        }
        let p = plan(&src);
        let mut c = Contact::default();
        c.fields.insert("country".into(), Value::Text("DE".into()));
        c.fields
            .insert("seen".into(), Value::Timestamp(NOW - 86_400));
        assert!(!holds(&p, "d59", &c, &[]));
        let cx = Context {
            plan: &p,
            contact: &c,
            events: &[],
            now: NOW,
            run: None,
        };
        let why = cx.why_not(&p.segments["d59"]).unwrap_or_default();
        assert!(why.len() < 2_000, "{why}");
        assert_eq!(cx.next_change(&p.segments["d59"]), Some(NOW + 2 * 86_400));
    }

    /// `trial_ends_at - 3d <= now` turns true the second `now` reaches the
    /// shifted time, `now + 7d` reads a week ahead, and a date moved by
    /// whole days stays a date (by hours: its UTC midnight moved).
    #[test]
    fn shifted_times_hold_and_change_at_the_exact_second() {
        let p = plan(
            r#"
contact { email: email, trial_ends_at: timestamp?, renew_on: date? }
segment ending = trial_ends_at - 3d <= now and trial_ends_at > now
segment within_week = trial_ends_at < now + 7d
segment renew_eve = renew_on - 1d <= 2026-01-14 and renew_on + 12h > 2026-01-15T11:00:00Z
"#,
        );
        let mut c = Contact::default();
        let end = NOW + 5 * 86_400;
        c.fields
            .insert("trial_ends_at".into(), Value::Timestamp(end));
        let cx = Context {
            plan: &p,
            contact: &c,
            events: &[],
            now: NOW,
            run: None,
        };
        assert!(!cx.eval(&p.segments["ending"]));
        assert_eq!(
            cx.next_change(&p.segments["ending"]),
            Some(end - 3 * 86_400)
        );
        assert!(cx.eval(&p.segments["within_week"]));
        // `end < now + 7d` changed when `now + 7d` passed `end`, two days
        // ago: nothing is left to wake for.
        assert_eq!(cx.next_change(&p.segments["within_week"]), None);
        let early = Context {
            now: end - 10 * 86_400,
            ..cx
        };
        assert!(!early.eval(&p.segments["within_week"]));
        // It turns true one second after `now + 7d` reaches `end`; the
        // runner wakes at that bound, then at the next second.
        assert_eq!(
            early.next_change(&p.segments["within_week"]),
            Some(end - 7 * 86_400)
        );
        let at_bound = Context {
            now: end - 7 * 86_400,
            ..cx
        };
        assert!(!at_bound.eval(&p.segments["within_week"]));
        assert_eq!(
            at_bound.next_change(&p.segments["within_week"]),
            Some(end - 7 * 86_400 + 1)
        );
        let later = Context {
            now: end - 3 * 86_400,
            ..cx
        };
        assert!(later.eval(&p.segments["ending"]));
        let mut r = Contact::default();
        r.fields.insert(
            "renew_on".into(),
            Value::Date(jiff::civil::date(2026, 1, 15)),
        );
        let rx = Context {
            plan: &p,
            contact: &r,
            events: &[],
            now: NOW,
            run: None,
        };
        assert!(rx.eval(&p.segments["renew_eve"]));
        assert!(rx.next_change(&p.segments["renew_eve"]).is_none());
    }
}
