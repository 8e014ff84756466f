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
//! 1. its row, tags or lists changed, or its events (added late, changed
//!    in place, deleted): on the canonical tables, triggers log every
//!    change ([`tracking_sql`]); on mapped tables, a fingerprint of each
//!    contact's row, tags and lists is kept, and a changed count of the
//!    events at or before `t0` makes everyone re-evaluated;
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
//! Finer: each of these is a *key* (`row`, `e:EVENT`, a window), and a
//! target is re-evaluated for a contact only for the keys it reads, itself
//! or through the segments it reads: a new `page_view` re-evaluates the
//! segments on page views, not those on purchases or on the contact's
//! fields. A segment `S` read by a target for a contact `S` is not
//! re-evaluated for keeps its previous membership (`sql::Restrict`), and
//! the events copied for a contact are only the names (and, for names
//! always read with a `since`, the window) its re-evaluated targets read.

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

/// What may have changed between two snapshots, by kind ([`dirty_sql`]).
pub struct Dirty {
    /// A query (PostgreSQL) of `(contact, key)` rows, with repeats: the
    /// contacts for which something of kind `key` may have changed between
    /// `t0` and `t1`, by rules 2 and 3 of the module's comment (rule 1 is
    /// the fingerprints', the key [`ROW`]): `e:NAME` for a new event
    /// named `NAME`, `c:N` and `v:N` for a time comparison on a contact's
    /// or an event's value that may flip.
    pub keys: String,
    /// `(target, key)`: the keys whose contacts each target is re-evaluated
    /// for (besides [`ROW`], which applies to every target), through the
    /// segments it reads: what can change a nested segment for a contact
    /// can change the target too.
    pub targets: Vec<(String, String)>,
    /// For the event names every read of which has a time-relative `since`
    /// bound: the lowest offset `c` (only events with `at >= t1 + c` can
    /// count as of `t1`). The other names are read whatever their time.
    pub since: BTreeMap<String, i64>,
    /// Conditions on the events `e` of rules 2 (the first: `t0 < at <=
    /// t1`) and 3: the events an aggregate may count at one instant and
    /// not at the other ([`super::state`]).
    pub events: Vec<String>,
    /// The `(contact, key)` rows of the `c:N` keys alone (a query).
    pub contacts: String,
    /// The `contact`s of the `c:N` keys met in an aggregate's `where` (a
    /// query): the aggregates' values may move for them.
    pub aggregate_contacts: String,
}

/// The key of a contact whose row, tags or lists changed: every target is
/// re-evaluated for it.
pub const ROW: &str = "row";

/// The keyed rows of the contacts whose membership may have changed
/// between a snapshot as of `t0` and one as of `t1` (unix seconds), and
/// which targets each key concerns. `None`: every contact must be
/// re-evaluated.
pub fn dirty_sql(
    plan: &Plan,
    mapping: &Mapping,
    t0: i64,
    t1: i64,
) -> Result<Option<Dirty>, Unsupported> {
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
            restrict: None,
            state: None,
            aggregates: Default::default(),
            refs: BTreeMap::new(),
            inline: Default::default(),
        },
        t0,
        t1,
        contact: Vec::new(),
        event: Vec::new(),
        everyone: false,
        own: BTreeMap::new(),
        refs: BTreeMap::new(),
        since: BTreeMap::new(),
        sargable: mapping.events.is_none() && mapping.event_tables.is_empty(),
        in_aggregate: Default::default(),
    };
    let targets = super::data::targets(plan);
    for (name, e) in &targets {
        s.c.target = name.clone();
        s.own.entry(name.clone()).or_default();
        s.walk(e, None)?;
    }
    if s.everyone {
        return Ok(None);
    }
    let at = at_s();
    let new = format!(
        "{}{at} > {t0} AND {at} <= {t1}",
        s.at_range(t0.saturating_add(1), t1)
    );
    let mut parts = vec![format!(
        "SELECT e.contact, 'e:' || e.event AS key FROM events e\nWHERE {new}"
    )];
    for (i, cond) in s.event.iter().enumerate() {
        parts.push(format!(
            "SELECT e.contact, 'v:{i}' AS key FROM events e\nWHERE {cond}"
        ));
    }
    // The contact windows in one scan of the contacts (a key for each
    // window a contact is in).
    let contact_scan = (!s.contact.is_empty()).then(|| {
        let keys: Vec<String> = s
            .contact
            .iter()
            .enumerate()
            .map(|(i, cond)| format!("CASE WHEN {cond} THEN 'c:{i}' END"))
            .collect();
        let any: Vec<String> = s.contact.iter().map(|c| format!("({c})")).collect();
        format!(
            "SELECT w.contact, w.key FROM (\nSELECT c.id AS contact, unnest(ARRAY[{}]) AS key FROM contacts c\nWHERE {}\n) w WHERE w.key IS NOT NULL",
            keys.join(", "),
            any.join(" OR ")
        )
    });
    parts.extend(contact_scan.clone());
    let keys = format!("{}{}", with(plan, mapping, ""), parts.join("\nUNION ALL\n"));
    let in_aggregate: Vec<String> = s
        .in_aggregate
        .iter()
        .map(|i| {
            format!(
                "SELECT c.id AS contact FROM contacts c\nWHERE {}",
                s.contact[*i]
            )
        })
        .collect();
    // A query over the contacts (with the mapped tables' CTEs), or an
    // empty relation of the same text columns.
    let over_contacts = |query: Option<String>, columns: &[&str]| match query {
        Some(q) => format!("{}{q}", with(plan, mapping, "")),
        None => {
            let nulls: Vec<String> = columns
                .iter()
                .map(|c| format!("CAST(NULL AS text) AS {c}"))
                .collect();
            format!("SELECT {} WHERE FALSE", nulls.join(", "))
        }
    };
    let aggregate_contacts = over_contacts(
        (!in_aggregate.is_empty()).then(|| in_aggregate.join("\nUNION\n")),
        &["contact"],
    );
    let contacts = over_contacts(contact_scan, &["contact", "key"]);
    let mut events = vec![new];
    events.extend(s.event.iter().cloned());
    // Each target's keys, with those of the segments it reads.
    let mut closed: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
    let mut out = Vec::new();
    for (name, _) in &targets {
        let keys = s.closure(name, &mut closed);
        out.extend(keys.into_iter().map(|k| (name.clone(), k)));
    }
    let since = s
        .since
        .into_iter()
        .filter_map(|(name, c)| Some((name, c?)))
        .collect();
    Ok(Some(Dirty {
        keys,
        targets: out,
        since,
        events,
        contacts,
        aggregate_contacts,
    }))
}

/// The statements (PostgreSQL) that fill, from [`Dirty`] and `changed`
/// (statements adding the [`ROW`] keys to `relance_keys`), the temporary
/// tables of an incremental snapshot: `relance_keys (contact, key)`,
/// `relance_dirty (target, contact)`: each target with the contacts to
/// re-evaluate it for, `relance_u (contact)`: all of those contacts, and
/// `relance_ue (contact, event)`: the events each of them needs, the names
/// its dirty targets read.
pub fn dirty_tables_sql(dirty: &Dirty, targets: &[String], changed: &str) -> String {
    let text = |s: &str| Dialect::Postgres.text(s);
    let pairs: Vec<String> = dirty
        .targets
        .iter()
        .map(|(t, k)| format!("({}, {})", text(t), text(k)))
        .collect();
    let all: Vec<String> = targets.iter().map(|t| format!("({})", text(t))).collect();
    let reads: Vec<String> = dirty
        .targets
        .iter()
        .filter_map(|(t, k)| Some(format!("({}, {})", text(t), text(k.strip_prefix("e:")?))))
        .collect();
    let row = text(ROW);
    format!(
        "CREATE TEMPORARY TABLE relance_keys (contact text COLLATE \"C\", key text COLLATE \"C\") ON COMMIT DROP;
INSERT INTO relance_keys SELECT DISTINCT CAST(contact AS text), key FROM (
{keys}
) d WHERE contact IS NOT NULL;
{changed}
ANALYZE relance_keys;
CREATE TEMPORARY TABLE relance_dirty ON COMMIT DROP AS
SELECT m.target COLLATE \"C\" AS target, k.contact FROM relance_keys k JOIN {pairs} ON m.key = k.key
UNION
SELECT t.target COLLATE \"C\", k.contact FROM relance_keys k CROSS JOIN {all} WHERE k.key = {row};
CREATE UNIQUE INDEX ON relance_dirty (target, contact);
CREATE TEMPORARY TABLE relance_u ON COMMIT DROP AS SELECT DISTINCT contact FROM relance_dirty;
CREATE UNIQUE INDEX ON relance_u (contact);
CREATE TEMPORARY TABLE relance_ue ON COMMIT DROP AS
SELECT DISTINCT d.contact, r.event COLLATE \"C\" AS event FROM relance_dirty d JOIN {reads} ON r.target = d.target;
ANALYZE relance_dirty; ANALYZE relance_u; ANALYZE relance_ue",
        keys = dirty.keys,
        pairs = values(&pairs, "m", &["target", "key"]),
        all = values(&all, "t", &["target"]),
        reads = values(&reads, "r", &["target", "event"]),
    )
}

/// [`dirty_tables_sql`] when the aggregates are kept ([`super::state`]):
/// after [`super::state::update_sql`], a target is re-evaluated for a
/// contact whose row changed (the log), for the `c:N` keys it reads, and
/// for each aggregate it reads whose value may have moved for the contact
/// (`relance_changed`). No events are read: `relance_ue` is empty.
pub fn state_dirty_tables_sql(
    dirty: &Dirty,
    aggregates: &super::state::Aggregates,
    targets: &[String],
) -> String {
    let text = |s: &str| Dialect::Postgres.text(s);
    let pairs: Vec<String> = dirty
        .targets
        .iter()
        .filter(|(_, k)| k.starts_with("c:"))
        .map(|(t, k)| format!("({}, {})", text(t), text(k)))
        .collect();
    let reads: Vec<String> = aggregates
        .reads
        .iter()
        .flat_map(|(t, names)| {
            names
                .iter()
                .map(move |n| format!("({}, {})", text(t), text(n)))
        })
        .collect();
    let all: Vec<String> = targets.iter().map(|t| format!("({})", text(t))).collect();
    format!(
        "CREATE TEMPORARY TABLE relance_keys (contact text COLLATE \"C\", key text COLLATE \"C\") ON COMMIT DROP;
INSERT INTO relance_keys SELECT DISTINCT CAST(contact AS text), key FROM (
{contacts}
) d WHERE contact IS NOT NULL;
ANALYZE relance_keys;
CREATE TEMPORARY TABLE relance_dirty ON COMMIT DROP AS SELECT * FROM (
SELECT m.target COLLATE \"C\" AS target, k.contact FROM relance_keys k JOIN {pairs} ON m.key = k.key
UNION
SELECT r.target COLLATE \"C\", c.contact FROM relance_changed c JOIN {reads} ON r.name = c.name
UNION
SELECT t.target COLLATE \"C\", l.contact FROM (SELECT DISTINCT contact FROM segment_changelog WHERE event IS NULL AND contact IS NOT NULL) l CROSS JOIN {all}
) x ORDER BY target, contact;
CREATE UNIQUE INDEX ON relance_dirty (target, contact);
CREATE TEMPORARY TABLE relance_u ON COMMIT DROP AS SELECT DISTINCT contact FROM relance_dirty;
CREATE UNIQUE INDEX ON relance_u (contact);
CREATE TEMPORARY TABLE relance_ue (contact text COLLATE \"C\", event text COLLATE \"C\") ON COMMIT DROP;
ANALYZE relance_dirty; ANALYZE relance_u",
        contacts = dirty.contacts,
        pairs = values(&pairs, "m", &["target", "key"]),
        reads = values(&reads, "r", &["target", "name"]),
        all = values(&all, "t", &["target"]),
    )
}

/// `(VALUES …) alias(columns)`, or an empty relation of text columns.
pub(super) fn values(rows: &[String], alias: &str, columns: &[&str]) -> String {
    if rows.is_empty() {
        let nulls: Vec<&str> = columns.iter().map(|_| "CAST(NULL AS text)").collect();
        format!(
            "(SELECT {} WHERE FALSE) {alias}({})",
            nulls.join(", "),
            columns.join(", ")
        )
    } else {
        format!(
            "(VALUES {}) {alias}({})",
            rows.join(", "),
            columns.join(", ")
        )
    }
}

/// The canonical tables whose changes [`TRACKING_SQL`] logs, with the
/// column naming the contact, the one naming the event and the one with
/// its time (or nothing).
pub const TRACKED: [(&str, &str, &str, &str); 4] = [
    ("contacts", "id", "", ""),
    ("events", "contact", "event", "at"),
    ("list_members", "contact", "", ""),
    ("tags", "contact", "", ""),
];

/// The triggers [`TRACKING_SQL`] puts on each tracked table.
pub const TRIGGERS_PER_TABLE: i64 = 4;

/// Change tracking on the canonical tables (PostgreSQL): statement-level
/// triggers log, in `segment_changelog` (created in the current schema),
/// the contacts whose rows, tags or lists were inserted, updated or
/// deleted (`event` NULL), and the `(contact, event)` of every event
/// inserted, updated or deleted (with, for an insert, the earliest `at`
/// inserted: events added after a snapshot need no recomputing), by any
/// writer (`relance load`, `psql`, an
/// ETL); a `TRUNCATE` logs a row with no contact (everyone).
/// `segments --write` reads the log instead of fingerprinting every
/// contact, and empties it. Idempotent.
///
/// The functions run as their owner (`SECURITY DEFINER`, with a fixed
/// `search_path` and the log's name qualified), so a writer needs no
/// right on the log; without the log (dropped by hand) they log nothing
/// rather than fail the writer's statement, and the next `--write` sees
/// the log is new and evaluates everyone.
pub fn tracking_sql() -> String {
    let mut sql = String::from(
        r#"CREATE TABLE IF NOT EXISTS segment_changelog (
  contact text COLLATE "C",
  event text COLLATE "C"
);
ALTER TABLE segment_changelog ADD COLUMN IF NOT EXISTS at timestamptz;
DO $do$
DECLARE
  log text := format('%I.segment_changelog', current_schema());
BEGIN
  EXECUTE format($f$
CREATE OR REPLACE FUNCTION relance_track_rows() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $relance$
DECLARE
  ev text := CASE WHEN TG_ARGV[1] = '' THEN 'NULL::text' ELSE format('CAST(%%I AS text)', TG_ARGV[1]) END;
  at text := CASE WHEN TG_OP = 'INSERT' AND COALESCE(TG_ARGV[2], '') <> '' THEN format('min(%%I)', TG_ARGV[2]) ELSE 'NULL::timestamptz' END;
  q text := format('SELECT CAST(%%I AS text) AS contact, %%s AS event, %%s AS at FROM ', TG_ARGV[0], ev, at);
  g text := ' GROUP BY 1, 2';
  ins text := %3$L;
BEGIN
  IF to_regclass(%2$L) IS NULL THEN
    RETURN NULL;
  END IF;
  IF TG_OP = 'INSERT' THEN
    EXECUTE ins || q || 'relance_new_rows' || g || ') x';
  ELSIF TG_OP = 'DELETE' THEN
    EXECUTE ins || q || 'relance_old_rows' || g || ') x';
  ELSE
    EXECUTE ins || q || 'relance_old_rows' || g || ' UNION ALL ' || q || 'relance_new_rows' || g || ') x';
  END IF;
  RETURN NULL;
END
$relance$;
CREATE OR REPLACE FUNCTION relance_track_truncate() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $relance$
BEGIN
  IF to_regclass(%2$L) IS NOT NULL THEN
    INSERT INTO %1$s VALUES (NULL, NULL);
  END IF;
  RETURN NULL;
END
$relance$;
$f$, log, log, 'INSERT INTO ' || log || ' (contact, event, at) SELECT DISTINCT * FROM (');
END
$do$;
"#,
    );
    for (table, contact, event, at) in TRACKED {
        let args = format!("'{contact}', '{event}', '{at}'");
        sql.push_str(&format!(
            "CREATE OR REPLACE TRIGGER relance_track_insert AFTER INSERT ON {table} REFERENCING NEW TABLE AS relance_new_rows FOR EACH STATEMENT EXECUTE FUNCTION relance_track_rows({args});
CREATE OR REPLACE TRIGGER relance_track_update AFTER UPDATE ON {table} REFERENCING OLD TABLE AS relance_old_rows NEW TABLE AS relance_new_rows FOR EACH STATEMENT EXECUTE FUNCTION relance_track_rows({args});
CREATE OR REPLACE TRIGGER relance_track_delete AFTER DELETE ON {table} REFERENCING OLD TABLE AS relance_old_rows FOR EACH STATEMENT EXECUTE FUNCTION relance_track_rows({args});
CREATE OR REPLACE TRIGGER relance_track_truncate AFTER TRUNCATE ON {table} FOR EACH STATEMENT EXECUTE FUNCTION relance_track_truncate();
ALTER TABLE {table} ENABLE TRIGGER relance_track_insert, ENABLE TRIGGER relance_track_update, ENABLE TRIGGER relance_track_delete, ENABLE TRIGGER relance_track_truncate;
"
        ));
    }
    sql
}

/// One row: the number of enabled tracking triggers on the canonical
/// tables, and the identity of those tables and of the log
/// (`contacts=OID,events=OID,…`; NULL without a log): a table dropped and
/// created again (`relance load --replace`) has a new one.
pub const TRACKING_STATE_SQL: &str = "SELECT
  (SELECT count(*) FROM pg_trigger t
     WHERE t.tgname LIKE 'relance\\_track\\_%' AND t.tgenabled IN ('O', 'A')
       AND (t.tgnargs = 3 OR t.tgname = 'relance_track_truncate')
       AND t.tgrelid IN (to_regclass('contacts'), to_regclass('events'), to_regclass('list_members'), to_regclass('tags'))),
  CASE WHEN to_regclass('segment_changelog') IS NOT NULL THEN
  concat_ws(',', 'contacts=' || to_regclass('contacts')::oid, 'events=' || to_regclass('events')::oid,
    'list_members=' || to_regclass('list_members')::oid, 'tags=' || to_regclass('tags')::oid,
    'segment_changelog=' || to_regclass('segment_changelog')::oid,
    'segment_aggregates=' || to_regclass('segment_aggregates')::oid) END";

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
/// in `contacts` (a `contact` column) from the canonical (or mapped)
/// tables into temporary tables `{prefix}contacts`, `{prefix}list_members`
/// and `{prefix}tags`, and their events of the names `events` lists for
/// them (`(contact, event)`: what their targets read) into
/// `{prefix}events` (dropped at commit), indexed and analysed as the
/// canonical ones, for [`restricted`].
pub fn restricted_tables_sql(
    plan: &Plan,
    mapping: &Mapping,
    prefix: &str,
    contacts: &str,
    events: &str,
    window: Option<Window<'_>>,
) -> String {
    let with = with(plan, mapping, "");
    let mut out = String::new();
    for (table, key) in [
        ("contacts", "id"),
        ("list_members", "contact"),
        ("tags", "contact"),
    ] {
        out.push_str(&format!(
            "CREATE TEMPORARY TABLE {prefix}{table} ON COMMIT DROP AS\n{with}SELECT * FROM {table} WHERE CAST({key} AS text) COLLATE \"C\" IN (SELECT contact FROM {contacts});\n"
        ));
    }
    match window {
        Some(window) => out.push_str(&format!(
            "CREATE TEMPORARY TABLE {prefix}events ON COMMIT DROP AS\n{with}SELECT * FROM events e WHERE (CAST(contact AS text) COLLATE \"C\", CAST(event AS text) COLLATE \"C\") IN (SELECT contact, event FROM {events}){};\n",
            window.sql()
        )),
        // The aggregates are kept: no event is read.
        None => out.push_str(&format!(
            "CREATE TEMPORARY TABLE {prefix}events ON COMMIT DROP AS\n{with}SELECT * FROM events e WHERE FALSE;\n"
        )),
    }
    out.push_str(&format!(
        "CREATE INDEX ON {prefix}contacts (id);
CREATE INDEX ON {prefix}list_members (\"list\", contact);
CREATE INDEX ON {prefix}tags (contact);
ANALYZE {prefix}contacts; ANALYZE {prefix}events; ANALYZE {prefix}list_members; ANALYZE {prefix}tags;\n"
    ));
    out
}

/// Which events can count as of `t1` (unix seconds): none after it, and
/// for the names in `since`, none before `t1 + c` (the lowest `since`
/// offset of their reads).
pub struct Window<'a> {
    pub t1: i64,
    pub since: &'a BTreeMap<String, i64>,
}

impl Window<'_> {
    /// ` AND …` on the events `e`, one second wider on each side.
    fn sql(&self) -> String {
        let at = at_s();
        let mut out = format!(" AND {at} <= {}", self.t1.saturating_add(1));
        if !self.since.is_empty() {
            let arms: Vec<String> = self
                .since
                .iter()
                .map(|(name, c)| {
                    format!(
                        "WHEN {} THEN {at} >= {}",
                        Dialect::Postgres.text(name),
                        self.t1.saturating_add(*c).saturating_sub(1)
                    )
                })
                .collect();
            out.push_str(&format!(
                " AND (CASE e.event {} ELSE TRUE END)",
                arms.join(" ")
            ));
        }
        out
    }
}

/// The membership query (PostgreSQL) over the temporary tables
/// [`restricted_tables_sql`] fills (`prefix`); with `state`, the
/// aggregates are read from that table ([`super::state`]).
pub fn restricted(
    plan: &Plan,
    sources: &BTreeMap<String, String>,
    restrict: &super::Restrict<'_>,
    state: Option<&str>,
) -> Result<super::Compiled, Unsupported> {
    super::compile_inner(
        plan,
        Dialect::Postgres,
        None,
        sources,
        &Mapping::default(),
        Some(restrict),
        state,
    )
}

/// The full membership query (PostgreSQL, canonical tables) with the
/// aggregates read from the table `state` ([`super::state`]).
pub fn with_state(
    plan: &Plan,
    sources: &BTreeMap<String, String>,
    state: &str,
) -> Result<super::Compiled, Unsupported> {
    super::compile_inner(
        plan,
        Dialect::Postgres,
        None,
        sources,
        &Mapping::default(),
        None,
        Some(state),
    )
}

/// The index of `cond` in `list`, added at the end if it is not there
/// (one key per distinct condition).
fn intern(list: &mut Vec<String>, cond: String) -> usize {
    match list.iter().position(|c| *c == cond) {
        Some(i) => i,
        None => {
            list.push(cond);
            list.len() - 1
        }
    }
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
    /// Conditions on a contact row `c` and on an event row `e` (their
    /// keys are `c:INDEX` and `v:INDEX`).
    contact: Vec<String>,
    event: Vec<String>,
    everyone: bool,
    /// Each target's own keys (`c.target`'s, as it is walked).
    own: BTreeMap<String, std::collections::BTreeSet<String>>,
    /// The segments each target reads.
    refs: BTreeMap<String, std::collections::BTreeSet<String>>,
    /// Each event name read, with the lowest time-relative `since` offset
    /// of its reads (`None`: a read without one).
    since: BTreeMap<String, Option<i64>>,
    /// The events are the canonical table (`at` a `timestamptz`, indexed):
    /// a window on `at` is also written as a range an index can serve.
    sargable: bool,
    /// The contact conditions met in an aggregate's `where`.
    in_aggregate: std::collections::BTreeSet<usize>,
}

impl Sweeps<'_> {
    fn key(&mut self, key: String) {
        self.own
            .entry(self.c.target.clone())
            .or_default()
            .insert(key);
    }

    /// `e."at"` with whole seconds in `[lo, hi]`, as a range on the
    /// column followed by ` AND ` (the exact test on the seconds comes
    /// after it), or nothing when the events are mapped.
    fn at_range(&self, lo: i64, hi: i64) -> String {
        if !self.sargable {
            return String::new();
        }
        // Within PostgreSQL's timestamps (a wider range is still a superset).
        let clamp = |s: i64| s.clamp(-200_000_000_000, 9_000_000_000_000);
        format!(
            "e.\"at\" >= to_timestamp({}) AND e.\"at\" < to_timestamp({}) AND ",
            clamp(lo),
            clamp(hi.saturating_add(1))
        )
    }

    /// The events named `name` are read, since `since`.
    fn reads(&mut self, name: &str, since: Option<&Term>) {
        let c = since.and_then(relative);
        let bound = self.since.entry(name.to_string()).or_insert(c);
        *bound = match (*bound, c) {
            (Some(a), Some(b)) => Some(a.min(b)),
            _ => None,
        };
    }

    /// A condition on the events, keyed (the same condition, one key).
    fn on_event(&mut self, cond: String) {
        let i = intern(&mut self.event, cond);
        self.key(format!("v:{i}"));
    }

    fn on_contact(&mut self, cond: String) -> usize {
        let i = intern(&mut self.contact, cond);
        self.key(format!("c:{i}"));
        i
    }

    /// The keys of `target` and of every segment it reads, transitively
    /// (segments are acyclic: the plan's check refuses a cycle).
    fn closure(
        &self,
        target: &str,
        done: &mut BTreeMap<String, std::collections::BTreeSet<String>>,
    ) -> std::collections::BTreeSet<String> {
        if let Some(k) = done.get(target) {
            return k.clone();
        }
        let mut keys = self.own.get(target).cloned().unwrap_or_default();
        // Guard against a cycle all the same: it is seen as empty.
        done.insert(target.to_string(), Default::default());
        for r in self.refs.get(target).into_iter().flatten() {
            keys.extend(self.closure(r, done));
        }
        done.insert(target.to_string(), keys.clone());
        keys
    }

    /// A column `col` (a `timestamptz`, or a `date` at its UTC midnight)
    /// within `[t0 + c - 1, t1 + c + 1]` (whole seconds), widened, as a
    /// range an index can serve, followed by ` AND `.
    fn range_on(&self, col: &str, c: i64, date: bool) -> String {
        let lo = self.t0.saturating_add(c).saturating_sub(1);
        let hi = self.t1.saturating_add(c).saturating_add(1);
        if date {
            // Within PostgreSQL's dates (a wider range is still a superset).
            let day = |s: i64| s.div_euclid(86_400).clamp(-2_000_000, 2_000_000);
            format!(
                "{col} >= DATE '1970-01-01' + {} AND {col} <= DATE '1970-01-01' + {} AND ",
                day(lo),
                day(hi)
            )
        } else {
            let clamp = |s: i64| s.clamp(-200_000_000_000, 9_000_000_000_000);
            format!(
                "{col} >= to_timestamp({}) AND {col} < to_timestamp({}) AND ",
                clamp(lo),
                clamp(hi.saturating_add(1))
            )
        }
    }

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
            Expr::Const { .. } | Expr::List { .. } => {}
            Expr::Segment { name } => {
                self.refs
                    .entry(self.c.target.clone())
                    .or_default()
                    .insert(name.clone());
            }
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
                // `opened` reads the clicks too (a click proves an open).
                if name == "opened" {
                    self.key("e:clicked".into());
                    self.reads("clicked", since.as_ref());
                }
                self.key(format!("e:{name}"));
                self.reads(name, since.as_ref());
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
                self.key(format!("e:{name}"));
                self.reads(name, since.as_ref());
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
            let range = self.at_range(
                self.t0.saturating_add(c).saturating_sub(1),
                self.t1.saturating_add(c).saturating_add(1),
            );
            only.push(format!("{range}{}", self.window(&at_s(), c)));
            self.on_event(format!("({})", only.join(" AND ")));
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
            // On the canonical contacts, a range on the column itself (an
            // index serves it), before the exact test.
            let w = match (other, on_event, v.ty) {
                (Term::Field(f), false, Ty::Time) if self.sargable => format!(
                    "{}{w}",
                    self.range_on(&format!("c.{}", self.c.d.ident(f)), c, false)
                ),
                (Term::Field(f), false, Ty::Date) if self.sargable => format!(
                    "{}{w}",
                    self.range_on(&format!("c.{}", self.c.d.ident(f)), c, true)
                ),
                _ => w,
            };
            match (on_event, event) {
                (true, Some(name)) => {
                    let cond = format!("(e.event = {} AND {w})", self.c.d.text(name));
                    self.on_event(cond);
                }
                (true, None) => self.on_event(w),
                (false, None) => {
                    self.on_contact(w);
                }
                // In an aggregate's `where`: its value may move too.
                (false, Some(_)) => {
                    let i = self.on_contact(w);
                    self.in_aggregate.insert(i);
                }
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
