//! Incremental re-evaluation (`relance segments --write`, issue 14): after
//! a snapshot as of `t0`, the membership as of a later `t1` differs only
//! for the contacts this module names; the others keep their membership.
//!
//! Why that is exact: every CTE of the query is keyed by contact and
//! reads only that contact's row, tags, lists and events (an aggregate's
//! `where` joins the contact to itself). So a contact's membership as of
//! `t` is a function of its own data, of the events it has at or before
//! `t`, and of `t` itself through the time-relative terms (`now`, `Nd
//! ago`, and offsets of them, `since` bounds included; `within` belongs
//! to goals, never to segments). Between `t0` and `t1` it can change only if
//! 1. its row, tags or lists changed (a fingerprint of them is kept;
//!    new and removed contacts included);
//! 2. it has an event with `t0 < at <= t1` (events it did not see before);
//! 3. a comparison `X op t + c` (a time-relative term against a contact's
//!    or an event's time `X`, or `since t + c` against the `at` of an
//!    event the aggregate or engagement predicate reads: its event name,
//!    template and link) can flip for some `t` in `[t0, t1]`, that is
//!    when `X` lies in `[t0 + c, t1 + c]` (taken one second wider on each
//!    side, whole seconds being compared). A comparison of a time-relative term with
//!    a constant flips for every contact at once: when it can flip between
//!    `t0` and `t1`, everyone is re-evaluated ([`dirty_sql`] gives `None`).
//!
//! What is not seen by time: an event added later with an `at` at or
//! before `t0` (a late event). `segments --write` keeps the count of
//! events at or before each snapshot and evaluates everyone when it has
//! changed; `--full` evaluates everyone anyway.

use super::{Compiler, Dialect, Mapping, Plan, Scope, Ty, Unsupported, prelude};
use crate::plan::{Expr, Term};
use std::collections::{BTreeMap, HashMap};

/// `WITH` and the mapped tables' CTEs, or nothing (`extra`: more CTEs,
/// each ending with `,\n`).
fn with(plan: &Plan, mapping: &Mapping, extra: &str) -> String {
    let all = format!("{}{extra}", prelude(plan, Dialect::Postgres, mapping));
    let all = all.trim_end().trim_end_matches(',');
    if all.is_empty() {
        String::new()
    } else {
        format!("WITH {all}\n")
    }
}

/// Unix seconds of an event's `at` (as the query reads it).
fn at_s() -> String {
    Dialect::Postgres.epoch_ts("e.\"at\"")
}

/// The query (PostgreSQL) of the contacts to re-evaluate for a snapshot
/// as of `t1` after one as of `t0` (unix seconds), by rules 2 and 3 of the
/// module's comment (rule 1 is the fingerprints'): one `contact` column,
/// with repeats. `None`: every contact must be re-evaluated.
pub fn dirty_sql(
    plan: &Plan,
    mapping: &Mapping,
    t0: i64,
    t1: i64,
) -> Result<Option<String>, Unsupported> {
    let empty = BTreeMap::new();
    let mut s = Sweeps {
        c: Compiler {
            plan,
            d: Dialect::Postgres,
            sources: &empty,
            ctes: Vec::new(),
            segments: HashMap::new(),
            shared: HashMap::new(),
            target: String::new(),
        },
        t0,
        t1,
        contact: Vec::new(),
        event: Vec::new(),
        everyone: false,
    };
    for (name, e) in super::data::targets(plan) {
        s.c.target = name;
        s.walk(e, None)?;
    }
    if s.everyone {
        return Ok(None);
    }
    let at = at_s();
    let mut events = vec![format!("({at} > {t0} AND {at} <= {t1})")];
    events.extend(s.event);
    let mut sql = format!(
        "{}SELECT e.contact FROM events e\nWHERE {}",
        with(plan, mapping, ""),
        events.join("\n   OR ")
    );
    if !s.contact.is_empty() {
        sql.push_str(&format!(
            "\nUNION ALL\nSELECT c.id AS contact FROM contacts c\nWHERE {}",
            s.contact.join("\n   OR ")
        ));
    }
    Ok(Some(sql))
}

/// The fingerprint of each contact's row, tags and lists: `(contact, fp)`.
pub fn fingerprints_sql(plan: &Plan, mapping: &Mapping) -> String {
    format!(
        "{}SELECT c.id AS contact, md5(CAST(c AS text) || '|' || COALESCE(CAST(t.x AS text), '') || '|' || COALESCE(CAST(l.x AS text), '')) AS fp
FROM contacts c
LEFT JOIN fp_tags t ON t.contact = c.id
LEFT JOIN fp_lists l ON l.contact = c.id",
        with(
            plan,
            mapping,
            "fp_tags AS (\n  SELECT contact, array_agg(tag COLLATE \"C\" ORDER BY tag COLLATE \"C\") AS x FROM tags GROUP BY contact\n),\nfp_lists AS (\n  SELECT contact, array_agg(\"list\" COLLATE \"C\" ORDER BY \"list\" COLLATE \"C\") AS x FROM list_members GROUP BY contact\n),\n"
        )
    )
}

/// The numbers of events at or before `$1` and at or before `$2` (unix
/// seconds, `bigint`s), in one scan.
pub fn events_seen_sql(plan: &Plan, mapping: &Mapping) -> String {
    let at = at_s();
    format!(
        "{}SELECT count(*) FILTER (WHERE {at} <= $1), count(*) FILTER (WHERE {at} <= $2) FROM events e",
        with(plan, mapping, ""),
    )
}

/// The statements (PostgreSQL) that copy the rows of the contacts listed
/// in `dirty` (a `contact` column) from the canonical (or mapped) tables
/// into temporary tables `{prefix}contacts`, `{prefix}events`,
/// `{prefix}list_members` and `{prefix}tags` (dropped at commit), indexed
/// and analysed as the canonical ones, for [`restricted`].
pub fn restricted_tables_sql(plan: &Plan, mapping: &Mapping, prefix: &str, dirty: &str) -> String {
    let with = with(plan, mapping, "");
    let mut out = String::new();
    for (table, key) in [
        ("contacts", "id"),
        ("events", "contact"),
        ("list_members", "contact"),
        ("tags", "contact"),
    ] {
        out.push_str(&format!(
            "CREATE TEMPORARY TABLE {prefix}{table} ON COMMIT DROP AS\n{with}SELECT * FROM {table} WHERE CAST({key} AS text) COLLATE \"C\" IN (SELECT contact FROM {dirty});\n"
        ));
    }
    out.push_str(&format!(
        "CREATE INDEX ON {prefix}contacts (id);
CREATE INDEX ON {prefix}events (event, \"at\");
CREATE INDEX ON {prefix}list_members (\"list\", contact);
CREATE INDEX ON {prefix}tags (contact);
ANALYZE {prefix}contacts; ANALYZE {prefix}events; ANALYZE {prefix}list_members; ANALYZE {prefix}tags;\n"
    ));
    out
}

/// The membership query (PostgreSQL) over the temporary tables
/// [`restricted_tables_sql`] fills (`prefix`).
pub fn restricted(
    plan: &Plan,
    sources: &BTreeMap<String, String>,
    prefix: &str,
) -> Result<super::Compiled, Unsupported> {
    super::compile_inner(
        plan,
        Dialect::Postgres,
        None,
        sources,
        &Mapping::default(),
        Some(prefix),
    )
}

/// The offset `c` of a time-relative term (`t + c`), if it is one.
fn relative(t: &Term) -> Option<i64> {
    match t {
        Term::Now(_) => Some(0),
        Term::AgoSeconds(s) => Some(-*s),
        Term::Offset { term, seconds } => relative(term).map(|c| c + seconds),
        _ => None,
    }
}

fn mentions_relative(t: &Term) -> bool {
    match t {
        Term::Offset { term, .. } => mentions_relative(term),
        _ => relative(t).is_some(),
    }
}

/// Whether a term reads a field: `Some(true)` an event's, `Some(false)`
/// the contact's.
fn reads_field(t: &Term) -> Option<bool> {
    match t {
        Term::Field(_) => Some(false),
        Term::EventField(_) => Some(true),
        Term::Offset { term, .. } => reads_field(term),
        _ => None,
    }
}

/// A constant time term in unix seconds (a date at its UTC midnight).
fn constant(t: &Term) -> Option<i64> {
    match t {
        Term::Timestamp(x) => x.parse::<jiff::Timestamp>().ok().map(|t| t.as_second()),
        Term::Date(x) => {
            let d = x.parse::<jiff::civil::Date>().ok()?;
            let days = jiff::civil::date(1970, 1, 1).until(d).ok()?.get_days();
            Some(i64::from(days) * 86_400)
        }
        Term::Offset { term, seconds } => constant(term).map(|v| v + seconds),
        _ => None,
    }
}

struct Sweeps<'p> {
    c: Compiler<'p>,
    t0: i64,
    t1: i64,
    /// Conditions on a contact row `c` and on an event row `e`.
    contact: Vec<String>,
    event: Vec<String>,
    everyone: bool,
}

impl Sweeps<'_> {
    /// `X` in `[t0 + c - 1, t1 + c + 1]`.
    fn window(&self, x: &str, c: i64) -> String {
        format!(
            "{x} BETWEEN {} AND {}",
            self.t0.saturating_add(c).saturating_sub(1),
            self.t1.saturating_add(c).saturating_add(1)
        )
    }

    fn walk(&mut self, e: &Expr, event: Option<&str>) -> Result<(), Unsupported> {
        match e {
            Expr::Const { .. } | Expr::Segment { .. } | Expr::List { .. } => {}
            Expr::And { args } | Expr::Or { args } => {
                for a in args {
                    self.walk(a, event)?;
                }
            }
            Expr::Not { arg } => self.walk(arg, event)?,
            Expr::Compare { left, right, .. } => self.pair(left, right, event)?,
            Expr::In { value, list } => {
                for t in list {
                    self.pair(value, t, event)?;
                }
            }
            Expr::Engagement {
                event: name,
                template,
                link,
                since,
                ..
            } => {
                // Only the events the predicate reads (as the query does).
                let d = self.c.d;
                let mut only = vec![if name == "opened" {
                    "e.event IN ('opened', 'clicked')".to_string()
                } else {
                    format!("e.event = {}", d.text(name))
                }];
                if let Some(t) = template {
                    only.push(format!("e.\"template\" = {}", d.text(t)));
                }
                if let Some(l) = link {
                    only.push(format!("e.\"link\" = {}", d.text(l)));
                }
                self.since(since.as_ref(), only);
            }
            Expr::Aggregate {
                event: name,
                filter,
                since,
                ..
            } => {
                // The aggregate's value is compared with a number: a
                // time-relative one compiles to false, whatever `t`.
                let only = vec![format!("e.event = {}", self.c.d.text(name))];
                self.since(since.as_ref(), only);
                if let Some(f) = filter {
                    self.walk(f, Some(name))?;
                }
            }
            Expr::Flag { value }
            | Expr::IsSet { value }
            | Expr::Matches { value, .. }
            | Expr::Contains {
                haystack: value, ..
            } => {
                let others = match e {
                    Expr::Contains { needle, .. } => mentions_relative(needle),
                    _ => false,
                };
                // Not a time test: such a term makes a constant answer,
                // but re-evaluating everyone is safe.
                if mentions_relative(value) || others {
                    self.everyone = true;
                }
            }
            Expr::StartsWith {
                value,
                prefix: other,
            }
            | Expr::EndsWith {
                value,
                suffix: other,
            } => {
                if mentions_relative(value) || mentions_relative(other) {
                    self.everyone = true;
                }
            }
        }
        Ok(())
    }

    /// `since T`: the `at` of an event that passes `only` against `T`.
    fn since(&mut self, t: Option<&Term>, mut only: Vec<String>) {
        if let Some(c) = t.and_then(relative) {
            only.push(self.window(&at_s(), c));
            self.event.push(format!("({})", only.join(" AND ")));
        }
    }

    fn pair(&mut self, l: &Term, r: &Term, event: Option<&str>) -> Result<(), Unsupported> {
        let (c, other) = match (relative(l), relative(r)) {
            (Some(c), None) => (c, r),
            (None, Some(c)) => (c, l),
            // Both relative: their difference is constant; neither: no `t`.
            _ => return Ok(()),
        };
        if let Some(on_event) = reads_field(other) {
            let mut scope = Scope {
                joins: Vec::new(),
                event,
                contact: false,
                n: 0,
            };
            let v = self.c.term(other, &mut scope)?;
            let x = match v.ty {
                Ty::Time => v.sql,
                Ty::Date => self.c.d.epoch_date(&v.sql),
                // Not a time: the comparison is false whatever `t`.
                _ => return Ok(()),
            };
            let w = self.window(&x, c);
            match (on_event, event) {
                (true, Some(name)) => {
                    let cond = format!("(e.event = {} AND {w})", self.c.d.text(name));
                    self.event.push(cond);
                }
                (true, None) => self.event.push(w),
                (false, _) => self.contact.push(w),
            }
        } else if let Some(v) = constant(other) {
            let lo = self.t0.saturating_add(c).saturating_sub(1);
            let hi = self.t1.saturating_add(c).saturating_add(1);
            if (lo..=hi).contains(&v) {
                self.everyone = true;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_terms_and_constants() {
        assert_eq!(relative(&Term::AgoSeconds(86_400)), Some(-86_400));
        let shifted = Term::Offset {
            term: Box::new(Term::Now(true)),
            seconds: 60,
        };
        assert_eq!(relative(&shifted), Some(60));
        assert_eq!(relative(&Term::Field("x".into())), None);
        assert_eq!(constant(&Term::Date("1970-01-03".into())), Some(2 * 86_400));
        assert_eq!(
            constant(&Term::Timestamp("1970-01-01T00:01:00Z".into())),
            Some(60)
        );
        assert_eq!(reads_field(&Term::EventField("at".into())), Some(true));
    }
}
