//! Segments compiled to SQL (issue 14): the membership of every segment
//! and scenario audience of a plan, as of a timestamp parameter, over the
//! canonical warehouse tables ([`schema`]), for PostgreSQL, DuckDB and
//! ClickHouse. `eval` stays the reference: every construct here means
//! exactly what it means there, or is refused with an [`Unsupported`]
//! error (never compiled to something that differs). `docs/warehouse.md`
//! documents the tables and each dialect's notes.
//!
//! The shape of the query: a `params` CTE holds the as-of instant in unix
//! seconds, `ev` the events at or before it; each aggregate, engagement
//! predicate, list and referenced segment becomes a CTE keyed by contact,
//! LEFT JOINed to `contacts` in the CTE of the segment that uses it. Every
//! predicate is two-valued (absent values are `COALESCE`d to false), so
//! `NOT` means what `not` means in `eval`. Times are compared as whole unix
//! seconds (as `eval` reads them), numbers as exact decimals.

pub mod data;
pub mod incremental;
mod regex;
pub mod schema;
pub mod state;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use crate::plan::{Expr, Plan, Term};

/// The SQL engines relance compiles to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Postgres,
    DuckDb,
    ClickHouse,
}

impl Dialect {
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Postgres => "postgres",
            Dialect::DuckDb => "duckdb",
            Dialect::ClickHouse => "clickhouse",
        }
    }

    /// A text literal.
    pub fn text(self, s: &str) -> String {
        match self {
            // ClickHouse reads backslash escapes inside literals.
            Dialect::ClickHouse => format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'")),
            _ => format!("'{}'", s.replace('\'', "''")),
        }
    }

    /// A quoted identifier.
    pub fn ident(self, s: &str) -> String {
        format!("\"{}\"", s.replace('"', "\"\""))
    }

    /// Whole unix seconds of a timestamp expression (floored).
    fn epoch_ts(self, x: &str) -> String {
        match self {
            Dialect::Postgres => format!("floor(extract(epoch from {x}))::bigint"),
            Dialect::DuckDb => format!("CAST(floor(epoch_us({x}) / 1000000.0) AS BIGINT)"),
            Dialect::ClickHouse => {
                format!("toInt64(floor(toUnixTimestamp64Milli({x}) / 1000))")
            }
        }
    }

    /// Unix seconds of a date's UTC midnight.
    fn epoch_date(self, x: &str) -> String {
        match self {
            Dialect::Postgres => format!("(({x} - DATE '1970-01-01')::bigint * 86400)"),
            Dialect::DuckDb => format!("(date_diff('day', DATE '1970-01-01', {x}) * 86400)"),
            Dialect::ClickHouse => {
                format!("(toInt64(dateDiff('day', toDate32('1970-01-01'), {x})) * 86400)")
            }
        }
    }

    fn date_literal(self, d: &str) -> String {
        match self {
            Dialect::ClickHouse => format!("toDate32('{d}')"),
            _ => format!("DATE '{d}'"),
        }
    }

    fn add_days(self, x: &str, days: i64) -> String {
        match self {
            Dialect::ClickHouse => format!("addDays({x}, {days})"),
            _ => format!("({x} + {days})"),
        }
    }

    /// The as-of parameter (an RFC 3339 text) in unix seconds.
    fn as_of(self) -> String {
        match self {
            Dialect::Postgres => self.epoch_ts("CAST(CAST($1 AS text) AS timestamptz)"),
            Dialect::DuckDb => self.epoch_ts("CAST(CAST($1 AS VARCHAR) AS TIMESTAMPTZ)"),
            Dialect::ClickHouse => {
                self.epoch_ts("parseDateTime64BestEffort({as_of:String}, 3, 'UTC')")
            }
        }
    }

    /// A number as an exact decimal, for sums (PostgreSQL stores numbers
    /// as `numeric` already).
    fn exact(self, x: &str) -> String {
        match self {
            Dialect::Postgres => x.to_string(),
            Dialect::DuckDb => format!("CAST({x} AS DECIMAL(38, 10))"),
            Dialect::ClickHouse => format!("toDecimal128({x}, 10)"),
        }
    }

    /// `l cmp r` on texts, by code point (as Rust compares strings),
    /// whatever the column's collation.
    fn text_cmp(self, l: &str, op: &str, r: &str) -> String {
        match (self, op) {
            (Dialect::Postgres, "<" | "<=" | ">" | ">=") => {
                format!("({l} COLLATE \"C\") {op} {r}")
            }
            _ => format!("{l} {op} {r}"),
        }
    }

    fn text_contains(self, h: &str, n: &str) -> String {
        match self {
            Dialect::ClickHouse => format!("position({h}, {n}) > 0"),
            _ => format!("strpos({h}, {n}) > 0"),
        }
    }

    fn set_contains(self, set: &str, x: &str) -> String {
        match self {
            Dialect::Postgres => format!("{x} = ANY({set})"),
            Dialect::DuckDb => format!("list_contains({set}, {x})"),
            Dialect::ClickHouse => format!("has({set}, {x})"),
        }
    }

    fn starts_with(self, v: &str, p: &str) -> String {
        match self {
            Dialect::ClickHouse => format!("startsWith({v}, {p})"),
            _ => format!("starts_with({v}, {p})"),
        }
    }

    fn ends_with(self, v: &str, s: &str) -> String {
        match self {
            Dialect::Postgres => format!("right({v}, length({s})) = {s}"),
            Dialect::DuckDb => format!("ends_with({v}, {s})"),
            Dialect::ClickHouse => format!("endsWith({v}, {s})"),
        }
    }

    fn regex_match(self, v: &str, pattern: &str) -> String {
        let p = self.text(pattern);
        match self {
            Dialect::Postgres => format!("{v} ~ {p}"),
            Dialect::DuckDb => format!("regexp_matches({v}, {p})"),
            Dialect::ClickHouse => format!("match({v}, {p})"),
        }
    }
}

impl std::str::FromStr for Dialect {
    type Err = String;

    fn from_str(s: &str) -> Result<Dialect, String> {
        match s {
            "postgres" | "postgresql" => Ok(Dialect::Postgres),
            "duckdb" => Ok(Dialect::DuckDb),
            "clickhouse" => Ok(Dialect::ClickHouse),
            _ => Err(format!(
                "unknown SQL dialect `{s}`: use postgres, duckdb or clickhouse"
            )),
        }
    }
}

/// One of the user's tables standing for a canonical table
/// (`[warehouse.contacts]` in relance.toml): its name (possibly
/// schema-qualified) and the column of each canonical column it renames
/// (a canonical column not listed is read under its own name).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TableMap {
    pub table: String,
    pub columns: BTreeMap<String, String>,
}

/// Where the canonical tables are (`docs/warehouse.md`): each one mapped
/// is replaced by a CTE of the same name reading the user's table.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Mapping {
    pub contacts: Option<TableMap>,
    /// One events table with a type column (`event`).
    pub events: Option<TableMap>,
    /// A table per event (`[warehouse.events.purchase]`): its rows are
    /// that event; its columns are the event's fields (`amount`), `contact`
    /// and `at`.
    pub event_tables: BTreeMap<String, TableMap>,
    pub lists: Option<TableMap>,
    pub tags: Option<TableMap>,
}

impl Mapping {
    pub fn is_empty(&self) -> bool {
        *self == Mapping::default()
    }
}

/// Whether `name` is a plain (optionally schema-qualified) table name.
pub fn table_name_ok(name: &str) -> bool {
    !name.is_empty() && name.split('.').all(column_name_ok)
}

/// Whether `name` is a plain column name (letters, digits, `_`, `$`).
pub fn column_name_ok(name: &str) -> bool {
    let mut cs = name.chars();
    cs.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && cs.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
}

/// What cannot be compiled with `eval`'s exact meaning.
#[derive(Clone, Debug, PartialEq)]
pub struct Unsupported {
    /// The segment (or `audience:SCENARIO`) it was found in.
    pub target: String,
    pub message: String,
}

impl std::fmt::Display for Unsupported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}`: {}", self.target, self.message)
    }
}

/// The compiled query.
#[derive(Clone, Debug)]
pub struct Compiled {
    /// The SQL text: one statement returning `(segment, contact)` rows.
    pub sql: String,
    /// The segments (and `audience:SCENARIO`s) it computes, in order.
    pub targets: Vec<String>,
    /// The per-contact aggregates the query reads, for keeping them
    /// between snapshots (`segments --write`, [`state`]).
    pub aggregates: state::Aggregates,
}

/// The name an audience of a scenario gets among the segments.
pub fn audience_name(scenario: &str) -> String {
    format!("audience:{scenario}")
}

/// The column of the events table that holds `field` of event `event`:
/// the message fields of built-in events share columns (`template`,
/// `link`, `channel`, `list`); a declared event's field is `EVENT__FIELD`.
pub fn event_column(plan: &Plan, event: &str, field: &str) -> String {
    match plan.events.get(event) {
        Some(ty) if !ty.builtin => format!("{event}__{field}"),
        _ => field.to_string(),
    }
}

/// The columns that the built-in events share.
pub const MESSAGE_COLUMNS: [&str; 4] = ["template", "link", "channel", "list"];

/// What the query computes: every segment and every scenario audience
/// (`only`: one segment or `audience:SCENARIO`, and what it needs).
/// `sources`: a segment's source text by name, for the comment above its
/// CTE (a segment without one gets none).
pub fn compile(
    plan: &Plan,
    dialect: Dialect,
    only: Option<&str>,
    sources: &BTreeMap<String, String>,
) -> Result<Compiled, Unsupported> {
    compile_mapped(plan, dialect, only, sources, &Mapping::default())
}

/// [`compile`] over the user's tables (`mapping`).
pub fn compile_mapped(
    plan: &Plan,
    dialect: Dialect,
    only: Option<&str>,
    sources: &BTreeMap<String, String>,
    mapping: &Mapping,
) -> Result<Compiled, Unsupported> {
    compile_inner(plan, dialect, only, sources, mapping, None, None)
}

fn compile_inner(
    plan: &Plan,
    dialect: Dialect,
    only: Option<&str>,
    sources: &BTreeMap<String, String>,
    mapping: &Mapping,
    // Incremental re-evaluation: the tables to read instead, and which
    // contacts each target is evaluated for.
    restrict: Option<&Restrict<'_>>,
    // `segments --write`: the aggregates are read from this table of
    // per-contact values ([`state`]) instead of computed from the events.
    state: Option<&str>,
) -> Result<Compiled, Unsupported> {
    crate::eval::check_depth(plan).map_err(|message| Unsupported {
        target: "plan".into(),
        message,
    })?;
    let mut targets: Vec<(String, Option<&Expr>)> =
        plan.segments.keys().map(|n| (n.clone(), None)).collect();
    for name in &plan.scenario_order {
        if let Some(a) = plan.scenarios.get(name).and_then(|s| s.audience.as_ref()) {
            targets.push((audience_name(name), Some(a)));
        }
    }
    if let Some(only) = only {
        targets.retain(|(n, _)| n == only);
        if targets.is_empty() {
            let mut known: Vec<String> = plan.segments.keys().cloned().collect();
            known.extend(
                plan.scenario_order
                    .iter()
                    .filter(|s| plan.scenarios.get(*s).is_some_and(|s| s.audience.is_some()))
                    .map(|s| audience_name(s)),
            );
            return Err(Unsupported {
                target: only.to_string(),
                message: format!(
                    "no segment or scenario audience of that name; known: {}",
                    known.join(", ")
                ),
            });
        }
    }
    let mut c = Compiler {
        plan,
        d: dialect,
        sources,
        ctes: Vec::new(),
        segments: HashMap::new(),
        shared: HashMap::new(),
        target: String::new(),
        restrict: restrict.map(|r| Restrict {
            prefix: r.prefix,
            dirty: r.dirty,
            members: r.members,
        }),
        state,
        aggregates: state::Aggregates::default(),
        refs: BTreeMap::new(),
        inline: std::collections::HashSet::new(),
    };
    let mut names = Vec::new();
    for (name, audience) in &targets {
        let cte = match audience {
            None => c.segment(name)?,
            Some(e) => {
                c.target = name.clone();
                let comment = format!("{name}: the scenario's audience");
                c.contact_cte(&format!("aud_{}", &name["audience:".len()..]), e, &comment)?
            }
        };
        names.push((name.clone(), cte));
    }
    let sql = c.finish(
        &names,
        &match restrict {
            Some(r) => restricted_prelude(r.prefix),
            None => prelude(plan, dialect, mapping),
        },
    );
    let targets: Vec<String> = names.into_iter().map(|(n, _)| n).collect();
    let mut aggregates = std::mem::take(&mut c.aggregates);
    aggregates.close(&targets, &c.refs);
    Ok(Compiled {
        sql,
        targets,
        aggregates,
    })
}

struct Compiler<'p> {
    plan: &'p Plan,
    d: Dialect,
    sources: &'p BTreeMap<String, String>,
    /// `(name, body)` in dependency order.
    ctes: Vec<(String, String)>,
    /// Segment name → its CTE.
    segments: HashMap<String, String>,
    /// CTE body → its name: equal aggregates are computed once.
    shared: HashMap<String, String>,
    /// What is being compiled, for errors (and, when restricted, whose
    /// contacts are evaluated).
    target: String,
    restrict: Option<Restrict<'p>>,
    /// The table the aggregates are read from, if they are ([`state`]).
    state: Option<&'p str>,
    /// The aggregate CTEs, and which targets read each.
    aggregates: state::Aggregates,
    /// The segments each target reads directly.
    refs: BTreeMap<String, std::collections::BTreeSet<String>>,
    /// CTEs written `NOT MATERIALIZED` (PostgreSQL): read from the state
    /// for a few contacts, each by an index probe.
    inline: std::collections::HashSet<String>,
}

/// An incremental query ([`incremental`]): it reads the temporary tables
/// `{prefix}contacts`… (the rows of the contacts to re-evaluate), and
/// evaluates each target `T` only for the contacts `dirty` (a table of
/// `(target, contact)` text columns) pairs with `T`. A segment `S` read
/// by `T` for a contact not paired with `S` keeps its membership as of
/// the previous snapshot, read from `members` (`(segment, contact)`):
/// whatever can change `S` for a contact also pairs it with `T`.
pub struct Restrict<'a> {
    pub prefix: &'a str,
    pub dirty: &'a str,
    pub members: &'a str,
}

/// The type of a term's value, as `eval` tells values apart.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Ty {
    Text,
    Number,
    Bool,
    Date,
    /// A timestamp, as whole unix seconds.
    Time,
    Set,
    /// A value that is never there (a shifted non-time).
    Never,
}

/// A compiled term: its SQL, its type, whether it may be NULL.
struct Val {
    sql: String,
    ty: Ty,
    nullable: bool,
}

/// Where an expression is compiled: the joins its CTE needs, and inside an
/// aggregate's `where`, the event being filtered.
struct Scope<'s> {
    joins: Vec<String>,
    event: Option<&'s str>,
    /// Whether the contact row `c` is read (inside an aggregate's `where`,
    /// the events are then joined with the contacts).
    contact: bool,
    /// The alias counter.
    n: usize,
}

impl Scope<'_> {
    fn alias(&mut self, prefix: &str) -> String {
        self.n += 1;
        format!("{prefix}{}", self.n)
    }
}

fn or_false(sql: String, nullable: bool) -> String {
    if nullable {
        format!("COALESCE({sql}, FALSE)")
    } else {
        sql
    }
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

fn comment(text: &str, indent: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let _ = writeln!(out, "{indent}-- {}", line.trim_end().replace('\r', ""));
    }
    out
}

/// A number as SQL text, exactly the double's shortest decimal.
fn number(n: f64) -> Option<String> {
    if !n.is_finite() {
        return None;
    }
    let s = if n == 0.0 {
        "0".to_string()
    } else if n.abs() >= 1e21 || n.abs() < 1e-7 {
        format!("{n:e}")
    } else {
        format!("{n}")
    };
    Some(if s.starts_with('-') {
        format!("({s})")
    } else {
        s
    })
}

impl<'p> Compiler<'p> {
    fn err(&self, message: impl Into<String>) -> Unsupported {
        Unsupported {
            target: self.target.clone(),
            message: message.into(),
        }
    }

    fn add_cte(&mut self, name: String, body: String) -> String {
        self.ctes.push((name.clone(), body));
        name
    }

    /// A CTE of contact ids, shared when another one has the same body.
    fn shared_cte(&mut self, prefix: &str, body: String) -> String {
        if let Some(n) = self.shared.get(&body) {
            return n.clone();
        }
        let name = format!("{prefix}{}", self.ctes.len() + 1);
        self.shared.insert(body.clone(), name.clone());
        self.add_cte(name, body)
    }

    /// An aggregate's CTE (shared as [`Self::shared_cte`]), recorded with
    /// its state query ([`state`]) and as read by the current target; read
    /// from the state table when there is one.
    fn event_cte(
        &mut self,
        prefix: &str,
        body: String,
        select: String,
        kind: state::Kind,
        events: Vec<String>,
        es: &Scope<'_>,
    ) -> String {
        let known = self.shared.contains_key(&body);
        let name = self.shared_cte(prefix, body);
        if !known {
            // A `where` that joins another CTE (a list, a segment) cannot
            // be computed apart from the query.
            let standalone = es.joins.is_empty();
            if let (Some(table), true) = (self.state, standalone) {
                let read = format!(
                    "  SELECT contact, {} FROM {table} WHERE name = {} AND \"rows\" > 0",
                    kind.read(),
                    self.d.text(&name)
                );
                if let Some(last) = self.ctes.last_mut() {
                    last.1 = read;
                }
                if self.restrict.is_some() {
                    self.inline.insert(name.clone());
                }
            }
            self.aggregates.add(state::Aggregate {
                name: name.clone(),
                kind,
                select,
                events,
                standalone,
                tests: Some(Default::default()),
            });
        }
        self.aggregates.read(&self.target, &name);
        name
    }

    /// The CTE of segment `name` (compiled once, after what it needs).
    fn segment(&mut self, name: &str) -> Result<String, Unsupported> {
        if let Some(cte) = self.segments.get(name) {
            return Ok(cte.clone());
        }
        let Some(e) = self.plan.segments.get(name) else {
            return Err(self.err(format!(
                "the plan names a segment `{name}` it does not define"
            )));
        };
        let outer = std::mem::replace(&mut self.target, name.to_string());
        let source = self
            .sources
            .get(name)
            .cloned()
            .unwrap_or_else(|| format!("segment {name}"));
        let cte = self.contact_cte(&format!("seg_{}", sanitize(name)), e, &source)?;
        self.target = outer;
        self.segments.insert(name.to_string(), cte.clone());
        Ok(cte)
    }

    /// A CTE `SELECT c.id FROM contacts c … WHERE e`.
    fn contact_cte(&mut self, base: &str, e: &Expr, source: &str) -> Result<String, Unsupported> {
        let mut scope = Scope {
            joins: Vec::new(),
            event: None,
            contact: true,
            n: 0,
        };
        let pred = self.pred(e, &mut scope)?;
        let mut body = comment(source, "  ");
        // ClickHouse names the column `c.id` without the alias.
        let alias = if self.d == Dialect::ClickHouse {
            " AS id"
        } else {
            ""
        };
        let _ = writeln!(body, "  SELECT c.id{alias}");
        let _ = writeln!(body, "  FROM contacts c");
        if let Some(r) = &self.restrict {
            let _ = writeln!(
                body,
                "  JOIN {} dd ON dd.target = {} AND dd.contact = CAST(c.id AS text) COLLATE \"C\"",
                r.dirty,
                self.d.text(&self.target)
            );
        }
        for j in &scope.joins {
            let _ = writeln!(body, "  {j}");
        }
        let _ = write!(body, "  WHERE {pred}");
        let mut name = base.to_string();
        let mut k = 1;
        while self.ctes.iter().any(|(n, _)| *n == name) {
            k += 1;
            name = format!("{base}_{k}");
        }
        Ok(self.add_cte(name, body))
    }

    fn finish(&self, targets: &[(String, String)], prelude: &str) -> String {
        let d = self.d;
        let mut sql = String::new();
        let _ = writeln!(
            sql,
            "-- Segment membership as of {}, computed by relance for {}.\n-- One row (segment, contact) per member.",
            match d {
                Dialect::ClickHouse => "{as_of:String}",
                _ => "$1",
            },
            d.name()
        );
        let _ = writeln!(
            sql,
            "WITH {prelude}params AS (\n  SELECT {} AS now_s\n),",
            d.as_of()
        );
        let _ = writeln!(
            sql,
            "ev AS {}(\n  -- the events at or before the as-of instant, with their time in unix seconds\n  SELECT e.*, {} AS at_s\n  FROM events e CROSS JOIN params p\n  WHERE {} <= p.now_s\n),",
            // Inlined in each aggregate rather than written out once
            // (PostgreSQL materialises a CTE used twice).
            if d == Dialect::Postgres {
                "NOT MATERIALIZED "
            } else {
                ""
            },
            d.epoch_ts("e.\"at\""),
            d.epoch_ts("e.\"at\"")
        );
        for (i, (name, body)) in self.ctes.iter().enumerate() {
            let sep = if i + 1 < self.ctes.len() { "," } else { "" };
            let inline = if self.inline.contains(name) {
                "NOT MATERIALIZED "
            } else {
                ""
            };
            let _ = writeln!(sql, "{} AS {inline}(\n{body}\n){sep}", d.ident(name));
        }
        if self.ctes.is_empty() {
            // `WITH` needs its last CTE without a comma.
            sql.truncate(sql.trim_end().len() - 1);
            sql.push('\n');
        }
        let parts: Vec<String> = targets
            .iter()
            .map(|(n, cte)| {
                format!(
                    "SELECT {} AS segment, id AS contact FROM {}",
                    d.text(n),
                    d.ident(cte)
                )
            })
            .collect();
        if parts.is_empty() {
            let _ = writeln!(
                sql,
                "SELECT {} AS segment, {} AS contact WHERE FALSE",
                d.text(""),
                d.text("")
            );
        } else {
            let _ = writeln!(sql, "{}", parts.join("\nUNION ALL\n"));
        }
        if d == Dialect::ClickHouse {
            sql.push_str("SETTINGS join_use_nulls = 1\n");
        }
        sql
    }

    /// A two-valued predicate (never NULL).
    fn pred(&mut self, e: &Expr, s: &mut Scope<'_>) -> Result<String, Unsupported> {
        let d = self.d;
        Ok(match e {
            Expr::Const { value } => if *value { "TRUE" } else { "FALSE" }.to_string(),
            Expr::And { args } | Expr::Or { args } => {
                let and = matches!(e, Expr::And { .. });
                if args.is_empty() {
                    return Ok(if and { "TRUE" } else { "FALSE" }.to_string());
                }
                let mut parts = Vec::new();
                for a in args {
                    parts.push(self.pred(a, s)?);
                }
                format!("({})", parts.join(if and { " AND " } else { " OR " }))
            }
            Expr::Not { arg } => format!("NOT {}", self.pred(arg, s)?),
            Expr::Segment { name } => {
                self.refs
                    .entry(self.target.clone())
                    .or_default()
                    .insert(name.clone());
                let cte = self.segment(name)?;
                let a = s.alias("s");
                s.contact = true;
                s.joins
                    .push(format!("LEFT JOIN {} {a} ON {a}.id = c.id", d.ident(&cte)));
                match &self.restrict {
                    // Not re-evaluated for this contact: unchanged.
                    Some(r) => {
                        let (n, id) = (d.text(name), "CAST(c.id AS text) COLLATE \"C\"");
                        format!(
                            "({a}.id IS NOT NULL OR (NOT EXISTS (SELECT 1 FROM {} ds WHERE ds.target = {n} AND ds.contact = {id}) AND EXISTS (SELECT 1 FROM {} mm WHERE mm.segment = {n} AND mm.contact = {id})))",
                            r.dirty, r.members
                        )
                    }
                    None => format!("({a}.id IS NOT NULL)"),
                }
            }
            Expr::List { name } => {
                let body = format!(
                    "  SELECT DISTINCT contact FROM list_members WHERE \"list\" = {}",
                    d.text(name)
                );
                let cte = self.shared_cte("list_", body);
                let a = s.alias("l");
                s.contact = true;
                s.joins.push(format!(
                    "LEFT JOIN {} {a} ON {a}.contact = c.id",
                    d.ident(&cte)
                ));
                format!("({a}.contact IS NOT NULL)")
            }
            Expr::Flag { value } => {
                let v = self.term(value, s)?;
                if v.ty == Ty::Bool {
                    or_false(v.sql, v.nullable)
                } else {
                    "FALSE".into()
                }
            }
            Expr::Compare { cmp, left, right } => {
                let l = self.term(left, s)?;
                let r = self.term(right, s)?;
                self.compare(cmp, &l, &r)
            }
            Expr::In { value, list } => {
                let v = self.term(value, s)?;
                let mut parts = Vec::new();
                for t in list {
                    let t = self.term(t, s)?;
                    let p = self.compare("==", &v, &t);
                    if p != "FALSE" {
                        parts.push(p);
                    }
                }
                match parts.len() {
                    0 => "FALSE".into(),
                    1 => parts.remove(0),
                    _ => format!("({})", parts.join(" OR ")),
                }
            }
            Expr::Contains { haystack, needle } => {
                let h = self.term(haystack, s)?;
                let n = self.term(needle, s)?;
                let nullable = h.nullable || n.nullable;
                match (h.ty, n.ty) {
                    (Ty::Set, Ty::Text) => or_false(d.set_contains(&h.sql, &n.sql), nullable),
                    (Ty::Text, Ty::Text) => or_false(d.text_contains(&h.sql, &n.sql), nullable),
                    _ => "FALSE".into(),
                }
            }
            Expr::IsSet { value } => {
                let v = self.term(value, s)?;
                if v.ty == Ty::Never {
                    "FALSE".into()
                } else if !v.nullable {
                    "TRUE".into()
                } else if v.ty == Ty::Set && d == Dialect::ClickHouse {
                    return Err(self.err(
                        "`is set` on a set: ClickHouse arrays cannot be absent (an absent set reads as an empty one)",
                    ));
                } else {
                    format!("({} IS NOT NULL)", v.sql)
                }
            }
            Expr::StartsWith { value, prefix } => {
                let v = self.term(value, s)?;
                let p = self.term(prefix, s)?;
                if v.ty == Ty::Text && p.ty == Ty::Text {
                    or_false(d.starts_with(&v.sql, &p.sql), v.nullable || p.nullable)
                } else {
                    "FALSE".into()
                }
            }
            Expr::EndsWith { value, suffix } => {
                let v = self.term(value, s)?;
                let x = self.term(suffix, s)?;
                if v.ty == Ty::Text && x.ty == Ty::Text {
                    or_false(d.ends_with(&v.sql, &x.sql), v.nullable || x.nullable)
                } else {
                    "FALSE".into()
                }
            }
            Expr::Matches { value, pattern } => {
                let v = self.term(value, s)?;
                if v.ty != Ty::Text {
                    return Ok("FALSE".into());
                }
                let p = regex::translate(pattern).map_err(|why| {
                    self.err(format!(
                        "`matches \"{pattern}\"` cannot be compiled to SQL with the meaning it has in relance: {why}; evaluate this segment in process (without --database)"
                    ))
                })?;
                or_false(d.regex_match(&v.sql, &p), v.nullable)
            }
            Expr::Engagement {
                event,
                template,
                link,
                since,
                scope: _,
            } => {
                // Outside a run every input event belongs to no run, so
                // `scope: run` sees what `scope: all` sees (as in `eval`).
                let mut es = Scope {
                    joins: Vec::new(),
                    event: None,
                    contact: false,
                    n: 0,
                };
                let mut conds = vec![if event == "opened" {
                    "e.event IN ('opened', 'clicked')".to_string()
                } else {
                    format!("e.event = {}", d.text(event))
                }];
                if let Some(t) = template {
                    conds.push(format!("e.\"template\" = {}", d.text(t)));
                }
                if let Some(l) = link {
                    conds.push(format!("e.\"link\" = {}", d.text(l)));
                }
                if let Some(since) = since {
                    conds.push(self.since(since, &mut es)?);
                }
                let body = self.event_cte_body("SELECT DISTINCT e.contact", &es, &conds, false);
                let select = self.event_cte_body(
                    &format!("SELECT e.contact, {}", state::Kind::Exists.columns("")),
                    &es,
                    &conds,
                    true,
                );
                let events = if event == "opened" {
                    vec!["opened".to_string(), "clicked".to_string()]
                } else {
                    vec![event.clone()]
                };
                let cte = self.event_cte("eng_", body, select, state::Kind::Exists, events, &es);
                self.aggregates.test(
                    &cte,
                    Some(state::Test {
                        op: ">".into(),
                        value: "0".into(),
                    }),
                );
                let a = s.alias("g");
                s.contact = true;
                s.joins.push(format!(
                    "LEFT JOIN {} {a} ON {a}.contact = c.id",
                    d.ident(&cte)
                ));
                format!("({a}.contact IS NOT NULL)")
            }
            Expr::Aggregate {
                function,
                event,
                field,
                filter,
                since,
                cmp,
                value,
                distinct,
            } => {
                let mut es = Scope {
                    joins: Vec::new(),
                    event: Some(event),
                    contact: false,
                    n: 0,
                };
                let mut conds = vec![format!("e.event = {}", d.text(event))];
                if let Some(since) = since {
                    conds.push(self.since(since, &mut es)?);
                }
                if let Some(f) = filter {
                    conds.push(self.pred(f, &mut es)?);
                }
                let col = field
                    .as_ref()
                    .map(|f| format!("e.{}", d.ident(&event_column(self.plan, event, f))));
                let col = || {
                    col.clone().ok_or_else(|| {
                        self.err(format!("`{function}` over `{event}` names no field"))
                    })
                };
                // The aggregate's kind, its CTE's columns, and the value it
                // sums (or is) in its state query.
                let (kind, select, summed) = match (function.as_str(), *distinct) {
                    ("count", true) => {
                        let v = format!("count(DISTINCT {})", col()?);
                        (state::Kind::Distinct, format!("{v} AS v"), v)
                    }
                    ("count", false) => (
                        state::Kind::Count,
                        "count(*) AS v".to_string(),
                        String::new(),
                    ),
                    ("sum", _) => {
                        let v = d.exact(&col()?);
                        (state::Kind::Sum, format!("sum({v}) AS v"), v)
                    }
                    ("min", _) => {
                        let v = format!("min({})", col()?);
                        (state::Kind::Min, format!("{v} AS v"), v)
                    }
                    ("max", _) => {
                        let v = format!("max({})", col()?);
                        (state::Kind::Max, format!("{v} AS v"), v)
                    }
                    ("avg", _) => {
                        let c = col()?;
                        let v = d.exact(&c);
                        (
                            state::Kind::Avg,
                            format!("sum({v}) AS total, count({c}) AS n"),
                            v,
                        )
                    }
                    (f, _) => return Err(self.err(format!("unknown aggregate `{f}`"))),
                };
                let body =
                    self.event_cte_body(&format!("SELECT e.contact, {select}"), &es, &conds, true);
                let state_select = self.event_cte_body(
                    &format!("SELECT e.contact, {}", kind.columns(&summed)),
                    &es,
                    &conds,
                    true,
                );
                let cte =
                    self.event_cte("agg_", body, state_select, kind, vec![event.clone()], &es);
                let a = s.alias("a");
                s.contact = true;
                s.joins.push(format!(
                    "LEFT JOIN {} {a} ON {a}.contact = c.id",
                    d.ident(&cte)
                ));
                let t = self.term(value, s)?;
                if t.ty != Ty::Number {
                    return Ok("FALSE".into());
                }
                let op = sql_op(cmp);
                // What the query asks of the value, for telling when a
                // moved value can change an answer ([`state`]).
                let test = match value {
                    Term::Number(_) => Some(state::Test {
                        op: op.to_string(),
                        value: t.sql.clone(),
                    }),
                    _ => None,
                };
                self.aggregates.test(&cte, test);
                let (sql, nullable) = kind.compare(
                    &format!("{a}.v"),
                    &format!("{a}.total"),
                    &format!("{a}.n"),
                    op,
                    &t.sql,
                );
                or_false(sql, nullable || t.nullable)
            }
        })
    }

    /// `SELECT … FROM ev e [JOIN contacts c] … WHERE …`.
    fn event_cte_body(
        &self,
        select: &str,
        es: &Scope<'_>,
        conds: &[String],
        group: bool,
    ) -> String {
        let mut body = String::new();
        // ClickHouse names the column `e.contact` without the alias.
        let select = if self.d == Dialect::ClickHouse {
            select.replacen("e.contact", "e.contact AS contact", 1)
        } else {
            select.to_string()
        };
        let _ = writeln!(body, "  {select}");
        let _ = writeln!(body, "  FROM ev e");
        if es.contact {
            let _ = writeln!(body, "  JOIN contacts c ON c.id = e.contact");
        }
        for j in &es.joins {
            let _ = writeln!(body, "  {j}");
        }
        let _ = write!(body, "  WHERE {}", conds.join("\n    AND "));
        if group {
            let _ = write!(body, "\n  GROUP BY e.contact");
        }
        body
    }

    /// `since T`: events at or after `T`; an absent `T` keeps them all.
    fn since(&mut self, t: &Term, es: &mut Scope<'_>) -> Result<String, Unsupported> {
        // The bound reads the contact, never the event.
        let event = es.event.take();
        let v = self.term(t, es);
        es.event = event;
        let v = v?;
        let bound = match v.ty {
            Ty::Time => v.sql,
            Ty::Date => self.d.epoch_date(&v.sql),
            _ => return Ok("TRUE".into()),
        };
        Ok(if v.nullable {
            format!("({bound} IS NULL OR e.at_s >= {bound})")
        } else {
            format!("e.at_s >= {bound}")
        })
    }

    fn compare(&self, cmp: &str, l: &Val, r: &Val) -> String {
        let d = self.d;
        let op = sql_op(cmp);
        let nullable = l.nullable || r.nullable;
        let sql = match (l.ty, r.ty) {
            (Ty::Number, Ty::Number) | (Ty::Bool, Ty::Bool) | (Ty::Date, Ty::Date) => {
                format!("{} {op} {}", l.sql, r.sql)
            }
            (Ty::Text, Ty::Text) => d.text_cmp(&l.sql, op, &r.sql),
            (Ty::Time | Ty::Date, Ty::Time | Ty::Date) => {
                let e = |v: &Val| {
                    if v.ty == Ty::Date {
                        d.epoch_date(&v.sql)
                    } else {
                        v.sql.clone()
                    }
                };
                format!("{} {op} {}", e(l), e(r))
            }
            _ => return "FALSE".into(),
        };
        or_false(sql, nullable)
    }

    fn field_ty(ty: &str) -> Ty {
        match ty {
            "number" => Ty::Number,
            "bool" => Ty::Bool,
            "date" => Ty::Date,
            "timestamp" => Ty::Time,
            "set<text>" => Ty::Set,
            _ => Ty::Text,
        }
    }

    fn term(&mut self, t: &Term, s: &mut Scope<'_>) -> Result<Val, Unsupported> {
        let d = self.d;
        let val = |sql: String, ty: Ty, nullable: bool| Val { sql, ty, nullable };
        Ok(match t {
            Term::Field(name) => {
                s.contact = true;
                match name.as_str() {
                    "id" => val("c.id".into(), Ty::Text, false),
                    "tags" => {
                        let body = match d {
                            Dialect::Postgres => {
                                "  SELECT contact, array_agg(tag) AS tags FROM tags GROUP BY contact"
                            }
                            Dialect::DuckDb => {
                                "  SELECT contact, list(tag) AS tags FROM tags GROUP BY contact"
                            }
                            Dialect::ClickHouse => {
                                "  SELECT contact, groupArray(tag) AS tags FROM tags GROUP BY contact"
                            }
                        };
                        let cte = self.shared_cte("tags_", body.to_string());
                        let a = s.alias("t");
                        s.joins.push(format!(
                            "LEFT JOIN {} {a} ON {a}.contact = c.id",
                            d.ident(&cte)
                        ));
                        let empty = match d {
                            Dialect::Postgres => "ARRAY[]::text[]",
                            Dialect::DuckDb => "CAST([] AS VARCHAR[])",
                            Dialect::ClickHouse => "CAST([] AS Array(String))",
                        };
                        val(format!("COALESCE({a}.tags, {empty})"), Ty::Set, false)
                    }
                    _ => {
                        let Some(f) = self.plan.schema.fields.iter().find(|f| f.name == *name)
                        else {
                            return Err(self.err(format!("the schema has no field `{name}`")));
                        };
                        let ty = Self::field_ty(&f.ty);
                        let col = format!("c.{}", d.ident(name));
                        let sql = if ty == Ty::Time {
                            d.epoch_ts(&col)
                        } else {
                            col
                        };
                        val(sql, ty, true)
                    }
                }
            }
            Term::EventField(name) => {
                let Some(event) = s.event else {
                    return Err(self.err(format!("the event field `{name}` outside `where`")));
                };
                let ty = match self.plan.events.get(event) {
                    Some(et) => match et.fields.iter().find(|f| f.name == *name) {
                        Some(f) => Self::field_ty(&f.ty),
                        None if MESSAGE_COLUMNS.contains(&name.as_str()) => Ty::Text,
                        None => {
                            return Err(self.err(format!("event `{event}` has no field `{name}`")));
                        }
                    },
                    None => Ty::Text,
                };
                let col = format!("e.{}", d.ident(&event_column(self.plan, event, name)));
                let sql = if ty == Ty::Time {
                    d.epoch_ts(&col)
                } else {
                    col
                };
                val(sql, ty, true)
            }
            Term::Text(x) | Term::Variant(x) => {
                if x.contains('\0') {
                    return Err(self.err("a text holding a NUL character"));
                }
                val(d.text(x), Ty::Text, false)
            }
            Term::Number(n) => match number(*n) {
                // DuckDB and ClickHouse store doubles: a literal of more
                // digits than a double's 15 is parsed as one.
                Some(sql)
                    if d != Dialect::Postgres
                        && sql.chars().filter(char::is_ascii_digit).count() > 15 =>
                {
                    val(format!("CAST('{n}' AS DOUBLE)"), Ty::Number, false)
                }
                Some(sql) => val(sql, Ty::Number, false),
                None => return Err(self.err(format!("the number {n}"))),
            },
            Term::Bool(b) => val(if *b { "TRUE" } else { "FALSE" }.into(), Ty::Bool, false),
            Term::Timestamp(x) => match x.parse::<jiff::Timestamp>() {
                Ok(ts) => val(ts.as_second().to_string(), Ty::Time, false),
                Err(_) => val("NULL".into(), Ty::Never, true),
            },
            Term::Date(x) => match x.parse::<jiff::civil::Date>() {
                Ok(date) => val(d.date_literal(&date.to_string()), Ty::Date, false),
                Err(_) => val("NULL".into(), Ty::Never, true),
            },
            Term::AgoSeconds(secs) => val(format!("({} - {secs})", self.now()), Ty::Time, false),
            Term::Now(_) => val(self.now(), Ty::Time, false),
            Term::Offset { term, seconds } => {
                let inner = self.term(term, s)?;
                match inner.ty {
                    Ty::Time => val(
                        format!("({} + {seconds})", inner.sql),
                        Ty::Time,
                        inner.nullable,
                    ),
                    Ty::Date if seconds % 86_400 == 0 => val(
                        d.add_days(&inner.sql, seconds / 86_400),
                        Ty::Date,
                        inner.nullable,
                    ),
                    Ty::Date => val(
                        format!("({} + {seconds})", d.epoch_date(&inner.sql)),
                        Ty::Time,
                        inner.nullable,
                    ),
                    _ => val("NULL".into(), Ty::Never, true),
                }
            }
        })
    }

    /// The as-of instant in unix seconds.
    fn now(&self) -> String {
        "(SELECT now_s FROM params)".to_string()
    }
}

/// The CTEs that stand for the mapped tables (each ends with `,\n`).
fn prelude(plan: &Plan, d: Dialect, m: &Mapping) -> String {
    let mut out = String::new();
    let col = |t: &TableMap, canonical: &str| {
        d.ident(t.columns.get(canonical).map_or(canonical, String::as_str))
    };
    let mut table = |name: &str, t: &TableMap, cols: &[String]| {
        let select: Vec<String> = cols
            .iter()
            .map(|c| format!("{} AS {}", col(t, c), d.ident(c)))
            .collect();
        let _ = writeln!(
            out,
            "{name} AS (\n  -- {} (relance.toml [warehouse.{name}])\n  SELECT {}\n  FROM {}\n),",
            t.table,
            select.join(", "),
            t.table
        );
    };
    if let Some(t) = &m.contacts {
        let cols: Vec<String> = std::iter::once("id".to_string())
            .chain(plan.schema.fields.iter().map(|f| f.name.clone()))
            .collect();
        table("contacts", t, &cols);
    }
    if let Some(t) = &m.lists {
        table("list_members", t, &["contact".into(), "list".into()]);
    }
    if let Some(t) = &m.tags {
        table("tags", t, &["contact".into(), "tag".into()]);
    }
    let columns = schema::event_columns(plan);
    let mut parts = Vec::new();
    if let Some(t) = &m.events {
        let cols: Vec<String> = ["contact", "event", "at"]
            .iter()
            .map(|s| s.to_string())
            .chain(columns.iter().map(|(c, _)| c.clone()))
            .map(|c| format!("{} AS {}", col(t, &c), d.ident(&c)))
            .collect();
        parts.push(format!("  SELECT {}\n  FROM {}", cols.join(", "), t.table));
    }
    for (event, t) in &m.event_tables {
        let mut cols = vec![
            format!("{} AS contact", col(t, "contact")),
            format!("{} AS event", d.text(event)),
            format!("{} AS {}", col(t, "at"), d.ident("at")),
        ];
        for (c, _) in &columns {
            let field = c.strip_prefix(&format!("{event}__")).or_else(|| {
                (plan.events.get(event).is_none_or(|e| e.builtin)
                    && MESSAGE_COLUMNS.contains(&c.as_str()))
                .then_some(c.as_str())
            });
            cols.push(match field {
                Some(f) => format!("{} AS {}", col(t, f), d.ident(c)),
                None => format!("NULL AS {}", d.ident(c)),
            });
        }
        parts.push(format!("  SELECT {}\n  FROM {}", cols.join(", "), t.table));
    }
    if !parts.is_empty() {
        let _ = writeln!(
            out,
            "events AS (\n  -- relance.toml [warehouse.events]\n{}\n),",
            parts.join("\n  UNION ALL\n")
        );
    }
    out
}

/// The CTEs that stand for the canonical tables when only some contacts
/// are evaluated ([`incremental`]): each reads the temporary table
/// `{prefix}{name}` of those contacts' rows, in the canonical shape.
fn restricted_prelude(prefix: &str) -> String {
    ["contacts", "events", "list_members", "tags"]
        .iter()
        .map(|t| format!("{t} AS NOT MATERIALIZED (\n  SELECT * FROM {prefix}{t}\n),\n"))
        .collect()
}

fn sql_op(cmp: &str) -> &'static str {
    match cmp {
        "==" => "=",
        "!=" => "<>",
        "<" => "<",
        "<=" => "<=",
        ">" => ">",
        _ => ">=",
    }
}

#[cfg(test)]
mod tests;
