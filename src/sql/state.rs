//! Aggregates kept between snapshots (`relance segments --write` on the
//! canonical tables, PostgreSQL): the value of every aggregate and
//! engagement predicate of the query, per contact, in the table
//! [`TABLE`], so that a snapshot after one more day of events reads the
//! day's events (and those the day pushed out of a `since` window) rather
//! than every event of every contact it re-evaluates.
//!
//! Each aggregate CTE of the query (`agg_N`, `eng_N`) has a *state query*:
//! per contact, the number of matching events (`rows`) and what the CTE
//! needs besides (a sum, a sum and a count, a minimum…). As of `t`, it is
//! the CTE's own `WHERE` over the events at or before `t` ([`over`]).
//!
//! Moving the state from `t0` to `t1`:
//! - counts, sums and averages ([`Kind::moves`]) move by the state query as
//!   of `t1` minus the state query as of `t0`, both over the *candidate*
//!   events only: those with `t0 < at <= t1`, and those a time-relative
//!   comparison of the CTE may count at one instant and not at the other
//!   (`sql::incremental`'s rule 3, the same conditions). Every other event
//!   counts at both instants or at neither, as long as it and its contact
//!   did not change;
//! - minima and maxima take the candidate events that count as of `t1`
//!   and not as of `t0` (`LEAST`, `GREATEST`); for a contact with a
//!   candidate event that counts as of `t0` (one that may leave), they are
//!   computed again, and so are distinct counts for the contacts with a
//!   candidate event that counts at either instant;
//! - a contact whose row, tags or lists changed, or whose events changed
//!   otherwise than by inserting events after `t0` (the change log says
//!   which), has its aggregates computed again from all its events.
//!
//! The contacts whose value moved are the only ones whose aggregates can
//! change a target's answer, besides the contacts' own rows and their
//! time comparisons (`sql::incremental`).

use super::Dialect;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// The table of per-contact aggregate values.
pub const TABLE: &str = "segment_aggregates";

/// Its definition (created when missing, by `--write`). Pages are left
/// 30% free: a day moves many values in place (heap-only updates).
pub const DDL: &str = "CREATE TABLE IF NOT EXISTS segment_aggregates (
  name text COLLATE \"C\" NOT NULL,
  contact text COLLATE \"C\" NOT NULL,
  \"rows\" bigint NOT NULL,
  v numeric,
  total numeric,
  n bigint,
  PRIMARY KEY (name, contact)
) WITH (fillfactor = 70);
";

/// What an aggregate keeps per contact, and how it moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// An engagement predicate: some event matches (`rows > 0`).
    Exists,
    /// `count(…)`: `rows`.
    Count,
    /// `sum(…)`: `v`, the sum of the present values.
    Sum,
    /// `avg(…)`: `total` over `n` present values.
    Avg,
    /// `min(…)`, `max(…)`: `v`; events that only add to it move it, one
    /// that leaves it makes it computed again.
    Min,
    Max,
    /// `count distinct(…)`: `v`, computed again when it may have moved.
    Distinct,
}

impl Kind {
    /// The state query's columns after the contact: `rows, v, total, n`
    /// (`value`: the summed value, or the whole aggregate for the others).
    pub fn columns(self, value: &str) -> String {
        let null = |ty: &str| format!("CAST(NULL AS {ty})");
        let (v, total, n) = match self {
            Kind::Exists | Kind::Count => (null("numeric"), null("numeric"), null("bigint")),
            Kind::Sum => (
                format!("COALESCE(sum({value}), 0)"),
                null("numeric"),
                null("bigint"),
            ),
            Kind::Avg => (
                null("numeric"),
                format!("COALESCE(sum({value}), 0)"),
                format!("count({value})"),
            ),
            Kind::Min | Kind::Max | Kind::Distinct => {
                (value.to_string(), null("numeric"), null("bigint"))
            }
        };
        format!("count(*) AS \"rows\", {v} AS v, {total} AS total, {n} AS n")
    }

    /// The columns the query's CTE has after `contact`, from the state.
    pub fn read(self) -> &'static str {
        match self {
            Kind::Exists => "\"rows\"",
            Kind::Count => "\"rows\" AS v",
            Kind::Sum | Kind::Min | Kind::Max | Kind::Distinct => "v",
            Kind::Avg => "total, n",
        }
    }

    /// `value op t` as the query makes it, from the aggregate's columns
    /// (`v`, or `total` and `n`; absent: no matching event), and whether
    /// it may be NULL. The engagement predicates are no comparison.
    pub fn compare(self, v: &str, total: &str, n: &str, op: &str, t: &str) -> (String, bool) {
        match self {
            // No events: a count or a sum is 0.
            Kind::Exists | Kind::Count | Kind::Sum | Kind::Distinct => {
                (format!("COALESCE({v}, 0) {op} {t}"), false)
            }
            // No value: no answer.
            Kind::Min | Kind::Max => (format!("{v} {op} {t}"), true),
            // `avg cmp t` as `total cmp t × n` (n > 0): exact.
            Kind::Avg => (format!("({n} > 0 AND {total} {op} {t} * {n})"), true),
        }
    }

    /// Whether the state moves by differences.
    pub fn moves(self) -> bool {
        matches!(self, Kind::Exists | Kind::Count | Kind::Sum | Kind::Avg)
    }

    /// For a minimum or a maximum: how a new value merges with it.
    fn merge(self) -> Option<&'static str> {
        match self {
            Kind::Min => Some("LEAST"),
            Kind::Max => Some("GREATEST"),
            _ => None,
        }
    }
}

/// One aggregate CTE of the query.
#[derive(Clone, Debug)]
pub struct Aggregate {
    /// The CTE's name (`agg_N`, `eng_N`): the state's key.
    pub name: String,
    pub kind: Kind,
    /// The state query: `SELECT e.contact, rows, v, total, n FROM ev e …
    /// GROUP BY e.contact`, reading `ev` and `params` ([`over`]).
    pub select: String,
    /// The event names it reads.
    pub events: Vec<String>,
    /// It reads only the events and the contact's row (no other CTE).
    pub standalone: bool,
    /// What the query compares the value with, when every comparison is
    /// with a constant (`None`: some comparison reads the contact).
    pub tests: Option<BTreeSet<Test>>,
}

/// A comparison of an aggregate's value with a constant number.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Test {
    /// The SQL operator.
    pub op: String,
    /// The number, as SQL.
    pub value: String,
}

impl Test {
    /// The comparison on the state row `a` (absent: no matching event),
    /// as the query makes it: never NULL.
    fn sql(&self, kind: Kind, a: &str) -> String {
        // A count (and an engagement predicate, `> 0`) is the state's rows.
        let v = match kind {
            Kind::Exists | Kind::Count => format!("{a}.\"rows\""),
            _ => format!("{a}.v"),
        };
        let (sql, nullable) = kind.compare(
            &v,
            &format!("{a}.total"),
            &format!("{a}.n"),
            &self.op,
            &self.value,
        );
        if nullable {
            format!("COALESCE({sql}, FALSE)")
        } else {
            sql
        }
    }
}

/// The aggregates of a query and the targets that read each.
#[derive(Clone, Debug, Default)]
pub struct Aggregates {
    pub list: Vec<Aggregate>,
    /// Target → the aggregates it reads, itself or through the segments it
    /// reads (after [`Aggregates::close`]).
    pub reads: BTreeMap<String, BTreeSet<String>>,
}

impl Aggregates {
    pub(super) fn add(&mut self, a: Aggregate) {
        self.list.push(a);
    }

    /// A comparison the query makes of aggregate `name` (`None`: with a
    /// value read from the contact).
    pub(super) fn test(&mut self, name: &str, test: Option<Test>) {
        if let Some(a) = self.list.iter_mut().find(|a| a.name == name) {
            match (&mut a.tests, test) {
                (Some(tests), Some(t)) => {
                    tests.insert(t);
                }
                (tests, _) => *tests = None,
            }
        }
    }

    pub(super) fn read(&mut self, target: &str, name: &str) {
        self.reads
            .entry(target.to_string())
            .or_default()
            .insert(name.to_string());
    }

    /// Adds to each target the aggregates of the segments it reads,
    /// transitively (`refs`: the segments each target reads directly).
    pub(super) fn close(&mut self, targets: &[String], refs: &BTreeMap<String, BTreeSet<String>>) {
        fn walk(
            t: &str,
            own: &BTreeMap<String, BTreeSet<String>>,
            refs: &BTreeMap<String, BTreeSet<String>>,
            done: &mut BTreeMap<String, BTreeSet<String>>,
        ) -> BTreeSet<String> {
            if let Some(k) = done.get(t) {
                return k.clone();
            }
            // A cycle (refused by the plan's check) is seen as empty.
            done.insert(t.to_string(), BTreeSet::new());
            let mut all = own.get(t).cloned().unwrap_or_default();
            for r in refs.get(t).into_iter().flatten() {
                all.extend(walk(r, own, refs, done));
            }
            done.insert(t.to_string(), all.clone());
            all
        }
        let own = std::mem::take(&mut self.reads);
        let mut done = BTreeMap::new();
        for t in targets {
            let all = walk(t, &own, refs, &mut done);
            self.reads.insert(t.clone(), all);
        }
    }

    /// Every aggregate can be kept apart from the query.
    pub fn complete(&self) -> bool {
        self.list.iter().all(|a| a.standalone)
    }
}

fn text(s: &str) -> String {
    Dialect::Postgres.text(s)
}

/// Unix seconds of `e."at"`.
fn at_s() -> String {
    Dialect::Postgres.epoch_ts("e.\"at\"")
}

/// The state query `select` as of `t` (unix seconds) over the events of
/// `source` (a table, or a parenthesised query, of the canonical events'
/// columns): a parenthesised relation `x (contact, rows, v, total, n)`.
pub fn over(select: &str, source: &str, t: i64) -> String {
    let at = at_s();
    format!(
        "(WITH params AS (SELECT CAST({t} AS bigint) AS now_s),
ev AS NOT MATERIALIZED (SELECT e.*, {at} AS at_s FROM {source} e WHERE {at} <= {t})
{select}) x"
    )
}

fn insert(a: &Aggregate, source: &str, t: i64) -> String {
    format!(
        "INSERT INTO {TABLE} (name, contact, \"rows\", v, total, n)\nSELECT {}, x.contact, x.\"rows\", x.v, x.total, x.n FROM {};\n",
        text(&a.name),
        over(&a.select, source, t)
    )
}

/// The statements that fill the state as of `t1` from every event.
pub fn build_sql(aggs: &Aggregates, t1: i64) -> String {
    let mut out = format!("TRUNCATE {TABLE};\n");
    for a in &aggs.list {
        out.push_str(&insert(a, "events", t1));
    }
    out.push_str(&format!("ANALYZE {TABLE};\n"));
    out
}

/// `(VALUES …) alias(a, b)` of text pairs, or an empty relation.
fn pairs(rows: &[(String, String)], alias: &str, a: &str, b: &str) -> String {
    let rows: Vec<String> = rows
        .iter()
        .map(|(x, y)| format!("({}, {})", text(x), text(y)))
        .collect();
    super::incremental::values(&rows, alias, &[a, b])
}

/// The statements that move the state from `t0` to `t1` (unix seconds)
/// and fill the temporary table `relance_changed (name, contact)`: the
/// aggregates whose value may have moved, by contact. `candidates`:
/// conditions on the events `e`, the first the new events' `t0 < at <=
/// t1`, the others those of `sql::incremental`'s rule 3. Reads the change
/// log `segment_changelog (contact, event, at)`.
pub fn update_sql(
    aggs: &Aggregates,
    t0: i64,
    t1: i64,
    candidates: &[String],
    contacts: &str,
) -> String {
    let mut out = String::new();
    // The candidate events, each once (a later condition leaves out what
    // an earlier one took: events have no key, and equal rows all count).
    let mut before: Vec<String> = Vec::new();
    for (i, cond) in candidates.iter().enumerate() {
        let not: String = before
            .iter()
            .map(|c| format!(" AND NOT COALESCE({c}, FALSE)"))
            .collect();
        if i == 0 {
            let _ = writeln!(
                out,
                "CREATE TEMPORARY TABLE relance_cand ON COMMIT DROP AS SELECT e.* FROM events e WHERE {cond};"
            );
        } else {
            let _ = writeln!(
                out,
                "INSERT INTO relance_cand SELECT e.* FROM events e WHERE {cond}{not};"
            );
        }
        before.push(format!("({cond})"));
    }
    if candidates.is_empty() {
        out.push_str("CREATE TEMPORARY TABLE relance_cand ON COMMIT DROP AS SELECT e.* FROM events e WHERE FALSE;\n");
    }
    out.push_str("CREATE INDEX ON relance_cand (event);\nANALYZE relance_cand;\n");
    out.push_str(
        "CREATE TEMPORARY TABLE relance_delta (name text COLLATE \"C\", contact text COLLATE \"C\", \"rows\" bigint, v numeric, total numeric, n bigint) ON COMMIT DROP;
CREATE TEMPORARY TABLE relance_recompute (name text COLLATE \"C\", contact text COLLATE \"C\") ON COMMIT DROP;
CREATE TEMPORARY TABLE relance_merge (name text COLLATE \"C\", contact text COLLATE \"C\", \"rows\" bigint, v numeric) ON COMMIT DROP;\n",
    );
    for a in &aggs.list {
        let (now, then) = (
            over(&a.select, "relance_cand", t1),
            over(&a.select, "relance_cand", t0),
        );
        let name = text(&a.name);
        if a.kind.moves() {
            let _ = writeln!(
                out,
                "INSERT INTO relance_delta
SELECT {name}, d.contact, sum(d.\"rows\"), sum(d.v), sum(d.total), sum(d.n) FROM (
SELECT x.contact, x.\"rows\", x.v, x.total, x.n FROM {now}
UNION ALL
SELECT x.contact, -x.\"rows\", -x.v, -x.total, -x.n FROM {then}
) d GROUP BY d.contact
HAVING sum(d.\"rows\") <> 0 OR sum(d.v) <> 0 OR sum(d.total) <> 0 OR sum(d.n) <> 0;"
            );
        } else if a.kind.merge().is_some() {
            // A candidate that counts as of t0 may leave: computed again.
            // The others only add (a candidate counting at both instants
            // was already in the value).
            let _ = writeln!(
                out,
                "INSERT INTO relance_recompute SELECT {name}, x.contact FROM {then};
INSERT INTO relance_merge SELECT {name}, x.contact, x.\"rows\", x.v FROM {now}
WHERE NOT EXISTS (SELECT 1 FROM relance_recompute r WHERE r.name = {name} AND r.contact = x.contact);"
            );
        } else {
            let _ = writeln!(
                out,
                "INSERT INTO relance_recompute SELECT {name}, x.contact FROM {now}
UNION SELECT {name}, x.contact FROM {then};"
            );
        }
    }
    // What the log says changed otherwise than by new events after t0:
    // a contact's row (`event` NULL), or its events of a name (an update,
    // a delete, an insert at or before t0).
    let reads: Vec<(String, String)> = aggs
        .list
        .iter()
        .flat_map(|a| a.events.iter().map(|e| (a.name.clone(), e.clone())))
        .collect();
    let reads_rel = pairs(&reads, "m", "name", "event");
    let _ = writeln!(
        out,
        "INSERT INTO relance_recompute SELECT DISTINCT m.name, l.contact FROM segment_changelog l JOIN {reads_rel} ON l.event IS NULL OR l.event = m.event
WHERE l.contact IS NOT NULL AND NOT (l.event IS NOT NULL AND l.at IS NOT NULL AND l.at >= to_timestamp({}));",
        t0.saturating_add(1)
    );
    // A time comparison on the contact's own field in an aggregate's
    // `where` may flip: its aggregates are computed again.
    let names: Vec<String> = aggs
        .list
        .iter()
        .map(|a| format!("({})", text(&a.name)))
        .collect();
    if !names.is_empty() {
        let _ = writeln!(
            out,
            "INSERT INTO relance_recompute SELECT m.name, CAST(k.contact AS text) FROM (\n{contacts}\n) k CROSS JOIN (VALUES {}) m(name) WHERE k.contact IS NOT NULL;",
            names.join(", ")
        );
    }
    // The values after they move (`RETURNING` what is written: a contact
    // left with no matching event keeps a row with `rows` 0 there, which
    // every comparison reads as no row), and before: read first for the
    // values merged or computed again, and for those that moved by a
    // difference, the value after minus the difference (0 for a new row,
    // which every comparison reads as no row too).
    let merges: Vec<String> = aggs
        .list
        .iter()
        .filter_map(|a| {
            let f = a.kind.merge()?;
            Some(format!("WHEN {} THEN {f}(s.v, excluded.v)", text(&a.name)))
        })
        .collect();
    // Without a minimum or a maximum, `relance_merge` stays empty.
    let merged = if merges.is_empty() {
        "s.v".to_string()
    } else {
        format!("CASE s.name {} END", merges.join(" "))
    };
    let returning = "RETURNING name, contact, \"rows\", v, total, n";
    let _ = writeln!(
        out,
        "CREATE TEMPORARY TABLE relance_probe ON COMMIT DROP AS
SELECT name, contact FROM relance_recompute UNION SELECT name, contact FROM relance_merge;
ANALYZE relance_probe;
CREATE TEMPORARY TABLE relance_before ON COMMIT DROP AS
SELECT s.* FROM relance_probe t JOIN {TABLE} s ON s.name = t.name AND s.contact = t.contact;
CREATE TEMPORARY TABLE relance_after ON COMMIT DROP AS SELECT * FROM relance_before WHERE FALSE;
WITH m AS (
INSERT INTO {TABLE} AS s (name, contact, \"rows\", v, total, n)
SELECT name, contact, \"rows\", v, total, n FROM relance_delta ORDER BY name, contact
ON CONFLICT (name, contact) DO UPDATE SET \"rows\" = s.\"rows\" + excluded.\"rows\", v = s.v + excluded.v, total = s.total + excluded.total, n = s.n + excluded.n
{returning})
INSERT INTO relance_after SELECT * FROM m;
WITH m AS (
INSERT INTO {TABLE} AS s (name, contact, \"rows\", v)
SELECT name, contact, \"rows\", v FROM relance_merge
ON CONFLICT (name, contact) DO UPDATE SET \"rows\" = s.\"rows\" + excluded.\"rows\",
  v = {merged}
{returning})
INSERT INTO relance_after SELECT * FROM m;
DELETE FROM {TABLE} s USING relance_after a WHERE a.\"rows\" = 0 AND s.name = a.name AND s.contact = a.contact;
CREATE TEMPORARY TABLE relance_rcev ON COMMIT DROP AS SELECT DISTINCT r.contact, m.event FROM relance_recompute r JOIN {reads_rel} ON m.name = r.name;
ANALYZE relance_recompute; ANALYZE relance_rcev;
CREATE TEMPORARY TABLE relance_rev ON COMMIT DROP AS SELECT e.* FROM events e WHERE FALSE;"
    );
    // Name by name, so that the planner sees how many events each has (an
    // index scan on the name for a rare one, a hash join on the pairs).
    let names: BTreeSet<&str> = reads.iter().map(|(_, e)| e.as_str()).collect();
    for name in names {
        let n = text(name);
        let _ = writeln!(
            out,
            "INSERT INTO relance_rev SELECT e.* FROM events e JOIN relance_rcev r ON r.contact = e.contact AND r.event = e.event WHERE e.event = {n} AND r.event = {n};"
        );
    }
    let _ = writeln!(
        out,
        "ANALYZE relance_rev;
DELETE FROM {TABLE} s USING relance_recompute r WHERE s.name = r.name AND s.contact = r.contact;
DELETE FROM relance_after s USING relance_recompute r WHERE s.name = r.name AND s.contact = r.contact;"
    );
    for a in &aggs.list {
        let name = text(&a.name);
        let _ = writeln!(
            out,
            "WITH m AS (\n{}\n{returning})\nINSERT INTO relance_after SELECT * FROM m;",
            insert(
                a,
                &format!(
                    "(SELECT v.* FROM relance_rev v WHERE v.contact IN (SELECT contact FROM relance_recompute WHERE name = {name}))"
                ),
                t1,
            )
            .trim_end()
            .trim_end_matches(';')
        );
    }
    // Moved values that give every comparison the query makes the same
    // answer change nothing.
    let arms: Vec<String> = aggs
        .list
        .iter()
        .filter_map(|a| {
            let tests = a.tests.as_ref()?;
            let differ: Vec<String> = tests
                .iter()
                .map(|t| format!("({}) <> ({})", t.sql(a.kind, "t"), t.sql(a.kind, "a")))
                .collect();
            (!differ.is_empty())
                .then(|| format!("WHEN {} THEN {}", text(&a.name), differ.join(" OR ")))
        })
        .collect();
    let filter = if arms.is_empty() {
        String::new()
    } else {
        format!("\nWHERE CASE t.name {} ELSE TRUE END", arms.join(" "))
    };
    let _ = writeln!(
        out,
        "ANALYZE relance_after;
CREATE TEMPORARY TABLE relance_changed ON COMMIT DROP AS
SELECT t.name, t.contact FROM (
SELECT p.name, p.contact, b.\"rows\", b.v, b.total, b.n FROM relance_probe p
LEFT JOIN relance_before b ON b.name = p.name AND b.contact = p.contact
UNION ALL
SELECT d.name, d.contact, a.\"rows\" - d.\"rows\", a.v - d.v, a.total - d.total, a.n - d.n FROM relance_delta d
JOIN relance_after a ON a.name = d.name AND a.contact = d.contact
WHERE NOT EXISTS (SELECT 1 FROM relance_probe p WHERE p.name = d.name AND p.contact = d.contact)
) t
LEFT JOIN relance_after a ON a.name = t.name AND a.contact = t.contact{filter};
ANALYZE relance_changed;"
    );
    out
}
