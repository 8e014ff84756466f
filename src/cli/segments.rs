//! `relance segments` (membership counts and members as of an instant, in
//! process with `eval` or on PostgreSQL through the generated SQL) and
//! `relance load` (the canonical tables in PostgreSQL, from `relance
//! run`'s input files).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use crate::plan::Plan;
use crate::run::input::{self, Contacts, Events, Problem};
use crate::sql::{self, Dialect, data, schema};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SegmentsFormat {
    Human,
    Json,
}

#[derive(clap::Args, Debug)]
pub struct SegmentsArgs {
    /// The project folder.
    #[arg(default_value = ".")]
    pub path: PathBuf,
    /// A PostgreSQL URL (`postgres://user@host:port/db`): membership is
    /// computed there by the generated SQL over the canonical tables
    /// (`relance load`). Without it, in process from `--contacts`/`--events`.
    #[arg(long, value_name = "URL", conflicts_with_all = ["contacts", "events"])]
    pub database: Option<String>,
    /// Contacts (JSONL or CSV, as for `relance run`).
    #[arg(long, required_unless_present = "database")]
    pub contacts: Option<PathBuf>,
    /// Events (JSONL, as for `relance run`).
    #[arg(long)]
    pub events: Option<PathBuf>,
    /// The instant (RFC 3339): events after it are not seen.
    #[arg(long, value_name = "TS")]
    pub as_of: String,
    /// `human` (a table) or `json` (`{"as_of", "segments": [{"name", "count"}]}`).
    #[arg(long, value_enum, default_value_t = SegmentsFormat::Human)]
    pub format: SegmentsFormat,
    /// Write one JSONL line `{"segment", "contact"}` per member here.
    #[arg(long, value_name = "FILE")]
    pub members: Option<PathBuf>,
    /// Store the membership in `segment_members` and the difference with
    /// the previous snapshot as `entered`/`exited` rows of
    /// `segment_changes`, at the as-of instant (needs `--database`).
    #[arg(long, requires = "database")]
    pub write: bool,
    /// With `--write`: evaluate every contact, not only those whose
    /// membership may have changed since the previous snapshot.
    #[arg(long, requires = "write")]
    pub full: bool,
}

#[derive(clap::Args, Debug)]
pub struct LoadArgs {
    /// The project folder.
    #[arg(default_value = ".")]
    pub path: PathBuf,
    /// The PostgreSQL URL.
    #[arg(long, value_name = "URL")]
    pub database: String,
    /// Contacts (JSONL or CSV).
    #[arg(long)]
    pub contacts: PathBuf,
    /// Events (JSONL).
    #[arg(long)]
    pub events: Option<PathBuf>,
    /// Drop the canonical tables first when they exist.
    #[arg(long)]
    pub replace: bool,
}

/// How many bad lines are printed one by one before a count.
const SHOWN_PROBLEMS: usize = 50;

fn report(problems: &[Problem]) {
    for p in problems.iter().take(SHOWN_PROBLEMS) {
        eprintln!("{}: {p}", if p.skipped { "error" } else { "warning" });
    }
    if problems.len() > SHOWN_PROBLEMS {
        eprintln!(
            "… and {} more bad input line(s)",
            problems.len() - SHOWN_PROBLEMS
        );
    }
}

/// The inputs read as `relance run` reads them, bad lines reported.
fn read_inputs(
    plan: &Plan,
    contacts: &std::path::Path,
    events: Option<&std::path::Path>,
) -> Result<(Contacts, Events), String> {
    crate::cli::load::check_run_input(contacts, "contacts")?;
    if let Some(events) = events {
        crate::cli::load::check_run_input(events, "events")?;
    }
    let threads = super::threads();
    let (contacts, mut problems) = input::read_contacts(contacts, plan)?;
    let (events, event_problems) = match events {
        Some(p) => input::read_events(p, plan, &contacts, threads)?,
        None => input::events_from_jsonl("", plan, &contacts, "-")?,
    };
    problems.extend(event_problems);
    report(&problems);
    Ok((contacts, events))
}

fn connect(url: &str) -> Result<postgres::Client, String> {
    postgres::Client::connect(url, postgres::NoTls)
        .map_err(|e| format!("cannot connect to `{url}`: {e}"))
}

pub fn segments(args: SegmentsArgs) -> ExitCode {
    let (plan, sources, mapping) = match super::sql::project_plan(&args.path) {
        Ok(p) => p,
        Err(code) => return code,
    };
    match run_segments(&args, &plan, &sources, &mapping) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

fn run_segments(
    args: &SegmentsArgs,
    plan: &Plan,
    sources: &BTreeMap<String, String>,
    mapping: &sql::Mapping,
) -> Result<ExitCode, String> {
    let as_of = input::parse_timestamp(&args.as_of).ok_or_else(|| {
        format!(
            "`--as-of {}` is not an RFC 3339 timestamp such as 2026-01-15T09:00:00Z",
            args.as_of
        )
    })?;
    let started = Instant::now();
    // Targets in the order of `targets` (segments by name, then audiences).
    let order: Vec<String> = data::targets(plan).into_iter().map(|(n, _)| n).collect();
    let stamp = jiff::Timestamp::from_second(as_of)
        .map_err(|e| e.to_string())?
        .to_string();
    let counts: BTreeMap<String, u64> = match &args.database {
        None => {
            let contacts = args
                .contacts
                .as_deref()
                .ok_or("--contacts or --database is needed")?;
            let (contacts, events) = read_inputs(plan, contacts, args.events.as_deref())?;
            let members = data::members_in_process(plan, &contacts, &events, as_of);
            if let Some(path) = &args.members {
                let mut w = MembersFile::create(path)?;
                for n in &order {
                    for c in members.get(n).into_iter().flatten() {
                        w.line(n, c)?;
                    }
                }
                w.finish()?;
            }
            members
                .iter()
                .map(|(n, m)| (n.clone(), m.len() as u64))
                .collect()
        }
        Some(url) => {
            let compiled = sql::compile_mapped(plan, Dialect::Postgres, None, sources, mapping)
                .map_err(|e| format!("{e}"))?;
            let mut client = connect(url)?;
            on_database(
                args,
                plan,
                sources,
                mapping,
                as_of,
                &mut client,
                &compiled,
                &stamp,
                &order,
            )
            .map_err(|e| format!("{e} (on `{url}`)"))?
        }
    };
    let elapsed = started.elapsed();
    let mut out = std::io::stdout().lock();
    let count = |n: &String| counts.get(n).copied().unwrap_or(0);
    match args.format {
        SegmentsFormat::Json => {
            let segs: Vec<serde_json::Value> = order
                .iter()
                .map(|n| serde_json::json!({"name": n, "count": count(n)}))
                .collect();
            let doc = serde_json::json!({"as_of": stamp, "segments": segs});
            let _ = writeln!(out, "{doc}");
        }
        SegmentsFormat::Human => {
            let width = order.iter().map(|n| n.len()).max().unwrap_or(0);
            for n in &order {
                let _ = writeln!(out, "{n:<width$}  {}", count(n));
            }
            let _ = out.flush();
            eprintln!(
                "{} segment(s) as of {stamp} ({}) in {:.2}s",
                order.len(),
                if args.database.is_some() {
                    "PostgreSQL"
                } else {
                    "in process"
                },
                elapsed.as_secs_f64()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `--members FILE`: one JSONL line per member, written as they come.
struct MembersFile {
    path: PathBuf,
    w: std::io::BufWriter<std::fs::File>,
}

impl MembersFile {
    fn create(path: &std::path::Path) -> Result<MembersFile, String> {
        let file = std::fs::File::create(path)
            .map_err(|e| format!("cannot write `{}`: {e}", path.display()))?;
        Ok(MembersFile {
            path: path.to_path_buf(),
            w: std::io::BufWriter::new(file),
        })
    }

    fn line(&mut self, segment: &str, contact: &str) -> Result<(), String> {
        let line = serde_json::json!({"segment": segment, "contact": contact});
        writeln!(self.w, "{line}")
            .map_err(|e| format!("cannot write `{}`: {e}", self.path.display()))
    }

    fn finish(mut self) -> Result<(), String> {
        self.w
            .flush()
            .map_err(|e| format!("cannot write `{}`: {e}", self.path.display()))
    }
}

fn pg_message(e: postgres::Error) -> String {
    e.as_db_error()
        .map(|d| d.message().to_string())
        .unwrap_or_else(|| e.to_string())
}

/// The counts per target on PostgreSQL, with memory that does not grow
/// with the base: the counts come from `count(*) … GROUP BY`; `--members`
/// streams the rows (ordered by target, then contact, as in process) into
/// the file as they arrive; `--write` works inside the database.
#[allow(clippy::too_many_arguments)]
fn on_database(
    args: &SegmentsArgs,
    plan: &Plan,
    sources: &BTreeMap<String, String>,
    mapping: &sql::Mapping,
    as_of: i64,
    client: &mut postgres::Client,
    compiled: &sql::Compiled,
    stamp: &str,
    order: &[String],
) -> Result<BTreeMap<String, u64>, String> {
    // PostgreSQL's JIT compiles the hundreds of expressions of the query
    // for seconds before running it (4.6 s of 11.4 s on 200,000 contacts,
    // docs/warehouse.md); the query is one pass of hash joins that gains
    // less than that.
    client
        .batch_execute("SET jit = off")
        .map_err(|e| format!("PostgreSQL: {}", pg_message(e)))?;
    // The rows to stream to `--members`, ordered as `order`, then by
    // contact (code points, as Rust sorts strings).
    let source = if args.write {
        let snap = Snapshot {
            plan,
            sources,
            mapping,
            as_of,
            stamp,
            full: args.full,
        };
        let counts = write_membership(client, compiled, &snap)
            .map_err(|e| format!("`--write` failed: {e}"))?;
        if args.members.is_none() {
            return Ok(counts);
        }
        "SELECT segment, contact FROM segment_members WHERE segment = ANY($2) AND CAST($1 AS text) IS NOT NULL"
            .to_string()
    } else if args.members.is_none() {
        let rows = client
            .query(
                format!(
                    "SELECT segment, count(*) FROM (\n{}) q GROUP BY segment",
                    compiled.sql
                )
                .as_str(),
                &[&stamp],
            )
            .map_err(|e| format!("the segments query failed: {}", pg_message(e)))?;
        return Ok(rows
            .iter()
            .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1) as u64))
            .collect());
    } else {
        format!("SELECT segment, contact FROM (\n{}) q", compiled.sql)
    };
    let Some(path) = &args.members else {
        unreachable!("handled above")
    };
    let query = format!(
        "SELECT segment, contact FROM ({source}) m ORDER BY array_position(CAST($2 AS text[]), CAST(segment AS text)), contact COLLATE \"C\""
    );
    let order: Vec<&str> = order.iter().map(String::as_str).collect();
    let params: [&(dyn postgres::types::ToSql + Sync); 2] = [&stamp, &order];
    let mut rows = client
        .query_raw(query.as_str(), params)
        .map_err(|e| format!("the segments query failed: {}", pg_message(e)))?;
    let mut w = MembersFile::create(path)?;
    let mut counts = BTreeMap::new();
    use postgres::fallible_iterator::FallibleIterator;
    while let Some(row) = rows
        .next()
        .map_err(|e| format!("the segments query failed: {}", pg_message(e)))?
    {
        let seg: &str = row.get(0);
        let contact: &str = row.get(1);
        w.line(seg, contact)?;
        match counts.get_mut(seg) {
            Some(n) => *n += 1,
            None => {
                counts.insert(seg.to_string(), 1u64);
            }
        }
    }
    w.finish()?;
    Ok(counts)
}

/// The tables `--write` keeps (created when missing).
const WRITE_TABLES: &str = "
CREATE TABLE IF NOT EXISTS segment_snapshots (
  as_of timestamptz NOT NULL PRIMARY KEY
);
ALTER TABLE segment_snapshots ADD COLUMN IF NOT EXISTS query_md5 text;
ALTER TABLE segment_snapshots ADD COLUMN IF NOT EXISTS events_seen bigint;
ALTER TABLE segment_snapshots ADD COLUMN IF NOT EXISTS tracking text;
CREATE TABLE IF NOT EXISTS segment_members (
  segment text COLLATE \"C\" NOT NULL,
  contact text COLLATE \"C\" NOT NULL,
  since timestamptz NOT NULL,
  PRIMARY KEY (segment, contact)
);
CREATE TABLE IF NOT EXISTS segment_changes (
  segment text COLLATE \"C\" NOT NULL,
  contact text COLLATE \"C\" NOT NULL,
  change text NOT NULL CHECK (change IN ('entered', 'exited')),
  at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS segment_changes_by_time ON segment_changes (at);
CREATE TABLE IF NOT EXISTS segment_sizes (
  segment text COLLATE \"C\" NOT NULL PRIMARY KEY,
  members bigint NOT NULL,
  as_of timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS segment_fingerprints (
  contact text COLLATE \"C\" NOT NULL PRIMARY KEY,
  fp text NOT NULL
);
";

/// Changes tracked by triggers on the canonical tables.
struct Tracking {
    /// `log:` and the tables' identity, recorded with the snapshot.
    label: String,
    /// The triggers were in place before this snapshot (else they were
    /// just created, and what changed since the previous one is unknown).
    continuous: bool,
}

/// Puts the change-tracking triggers on the canonical tables when they
/// are missing, then locks the log against writers until the commit (so
/// that every change is either seen now or logged for the next snapshot).
/// `None` when they cannot be created (not the tables' owner…):
/// fingerprints are used instead.
fn track_changes(tx: &mut postgres::Transaction<'_>) -> Result<Option<Tracking>, String> {
    use sql::incremental::{TRACKED, TRACKING_STATE_SQL, TRIGGERS_PER_TABLE, tracking_sql};
    let state = tx.query_one(TRACKING_STATE_SQL, &[]).map_err(pg_message)?;
    let (n, tables): (i64, Option<String>) = (state.get(0), state.get(1));
    let continuous = n == TRIGGERS_PER_TABLE * TRACKED.len() as i64 && tables.is_some();
    let tables = match tables {
        Some(t) if continuous => t,
        _ => {
            let mut sp = tx.savepoint("relance_track").map_err(pg_message)?;
            match sp.batch_execute(&tracking_sql()) {
                Ok(()) => sp.commit().map_err(pg_message)?,
                Err(e) => {
                    drop(sp);
                    eprintln!(
                        "note: cannot put the change-tracking triggers on the tables ({}); every contact is fingerprinted instead",
                        pg_message(e)
                    );
                    return Ok(None);
                }
            }
            let state = tx.query_one(TRACKING_STATE_SQL, &[]).map_err(pg_message)?;
            state
                .get::<_, Option<String>>(1)
                .ok_or("the change log `segment_changelog` could not be created")?
        }
    };
    tx.batch_execute("LOCK TABLE segment_changelog IN SHARE ROW EXCLUSIVE MODE")
        .map_err(pg_message)?;
    Ok(Some(Tracking {
        label: format!("log:{tables}"),
        continuous,
    }))
}

/// What `--write` needs besides the compiled query.
struct Snapshot<'a> {
    plan: &'a Plan,
    sources: &'a BTreeMap<String, String>,
    mapping: &'a sql::Mapping,
    /// The as-of instant, in unix seconds and as RFC 3339 text.
    as_of: i64,
    stamp: &'a str,
    /// `--full`: every contact re-evaluated.
    full: bool,
}

/// Computes the new membership into a temporary table, records what
/// entered and exited since the previous snapshot and updates
/// `segment_members`, in one transaction, inside the database; returns
/// the count of each target's members.
///
/// After a previous snapshot of the same query, only the contacts whose
/// membership may have changed are re-evaluated (`sql::incremental`
/// says which and why that gives the full answer); `--full`, a first
/// snapshot, changed segments, or events added or removed at or before the
/// previous snapshot make a full evaluation.
fn write_membership(
    client: &mut postgres::Client,
    compiled: &sql::Compiled,
    snap: &Snapshot<'_>,
) -> Result<BTreeMap<String, u64>, String> {
    let started = Instant::now();
    let stamp = snap.stamp;
    let mut tx = client.transaction().map_err(pg_message)?;
    tx.batch_execute(WRITE_TABLES).map_err(pg_message)?;
    tx.batch_execute(sql::state::DDL).map_err(pg_message)?;
    // Snapshots go forward in time: entered/exited rows are a feed.
    let later = tx
        .query(
            "SELECT as_of::text FROM segment_snapshots WHERE as_of >= CAST(CAST($1 AS text) AS timestamptz) ORDER BY as_of DESC LIMIT 1",
            &[&stamp],
        )
        .map_err(pg_message)?;
    if let Some(row) = later.first() {
        let at: String = row.get(0);
        return Err(format!(
            "a snapshot as of {at} is already written; `--write` takes a later `--as-of`"
        ));
    }
    let previous = tx
        .query(
            "SELECT floor(extract(epoch from as_of))::bigint, query_md5, events_seen, COALESCE(tracking, 'fingerprints') FROM segment_snapshots ORDER BY as_of DESC LIMIT 1",
            &[],
        )
        .map_err(pg_message)?;
    let previous = previous.first().map(|r| {
        (
            r.get::<_, i64>(0),
            r.get::<_, Option<String>>(1),
            r.get::<_, Option<i64>>(2),
            r.get::<_, String>(3),
        )
    });
    let query_md5: String = tx
        .query_one("SELECT md5($1)", &[&compiled.sql])
        .map_err(pg_message)?
        .get(0);
    let t0 = previous.as_ref().map_or(snap.as_of, |p| p.0);
    // How changes since the previous snapshot are known: the log the
    // triggers on the canonical tables fill, else fingerprints of every
    // contact and a count of the events.
    let tracking = if snap.mapping.is_empty() {
        track_changes(&mut tx)?
    } else {
        None
    };
    let label = tracking
        .as_ref()
        .map_or("fingerprints".to_string(), |t| t.label.clone());
    // The aggregates' per-contact values are kept between snapshots
    // (`sql::state`) when changes are logged and every aggregate can be
    // computed apart from the query.
    let stateful = tracking.is_some() && compiled.aggregates.complete();
    let (seen_t0, seen_now) = if tracking.is_none() {
        let seen = tx
            .query_one(
                sql::incremental::events_seen_sql(snap.plan, snap.mapping).as_str(),
                &[&t0, &snap.as_of],
            )
            .map_err(pg_message)?;
        (Some(seen.get::<_, i64>(0)), Some(seen.get::<_, i64>(1)))
    } else {
        (None, None)
    };
    tx.batch_execute(
        "CREATE TEMPORARY TABLE relance_new (segment text COLLATE \"C\", contact text COLLATE \"C\") ON COMMIT DROP;
         CREATE TEMPORARY TABLE relance_fp (contact text COLLATE \"C\", fp text) ON COMMIT DROP",
    )
    .map_err(pg_message)?;
    if tracking.is_none() {
        tx.execute(
            format!(
                "INSERT INTO relance_fp (contact, fp)\n{}",
                sql::incremental::fingerprints_sql(snap.plan, snap.mapping)
            )
            .as_str(),
            &[],
        )
        .map_err(pg_message)?;
    }
    let truncated = match &tracking {
        Some(_) => tx
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM segment_changelog WHERE contact IS NULL)",
                &[],
            )
            .map_err(pg_message)?
            .get::<_, bool>(0),
        None => false,
    };
    // The time window of the events that can count (incremental only).
    let mut since = BTreeMap::new();
    let full = match &previous {
        _ if snap.full => Some("--full".to_string()),
        None => Some("the first snapshot".to_string()),
        Some((_, md5, _, _)) if md5.as_deref() != Some(query_md5.as_str()) => {
            Some("the segments differ from the previous snapshot's".to_string())
        }
        Some((_, _, _, was)) if *was != label => Some(match &tracking {
            Some(_) if was.starts_with("log:") => {
                "the tables, the change log or the kept aggregates were replaced since the previous snapshot (changes are tracked again from this one on)".to_string()
            }
            Some(_) => "changes are tracked from this snapshot on".to_string(),
            None => "the changes since the previous snapshot were not tracked".to_string(),
        }),
        _ if tracking.as_ref().is_some_and(|t| !t.continuous) => Some(
            "the change-tracking triggers were missing or disabled (they are in place again)"
                .to_string(),
        ),
        _ if truncated => Some("a table was truncated since the previous snapshot".to_string()),
        Some((_, _, seen, _)) if tracking.is_none() && *seen != seen_t0 => Some(format!(
            "the events at or before the previous snapshot changed ({} then, {} now)",
            seen.map_or("unknown".to_string(), |n| n.to_string()),
            seen_t0.map_or("unknown".to_string(), |n| n.to_string())
        )),
        Some((t0, _, _, _)) => {
            match sql::incremental::dirty_sql(snap.plan, snap.mapping, *t0, snap.as_of)
                .map_err(|e| e.to_string())?
            {
                None => Some("a time-relative comparison with a constant flips".to_string()),
                Some(dirty) if stateful => {
                    // A day's events and those leaving a window are read
                    // through bitmaps of their pages: exact ones. The
                    // values moved are few against the tables: read by
                    // index probes (pages cached, as on an SSD) rather
                    // than by scanning the kept aggregates. The temporary
                    // tables' statistics need no fine histograms (the
                    // plans are joins on keys): a smaller sample.
                    tx.batch_execute(
                        "SET LOCAL work_mem = '32MB'; SET LOCAL random_page_cost = 1.1; SET LOCAL default_statistics_target = 10",
                    )
                    .map_err(pg_message)?;
                    tx.batch_execute(&sql::state::update_sql(
                        &compiled.aggregates,
                        *t0,
                        snap.as_of,
                        &dirty.events,
                        &dirty.aggregate_contacts,
                    ))
                    .map_err(pg_message)?;
                    tx.batch_execute(&sql::incremental::state_dirty_tables_sql(
                        &dirty,
                        &compiled.aggregates,
                        &compiled.targets,
                    ))
                    .map_err(pg_message)?;
                    None
                }
                Some(dirty) => {
                    let row = sql::Dialect::Postgres.text(sql::incremental::ROW);
                    let changed = if tracking.is_some() {
                        format!("INSERT INTO relance_keys SELECT DISTINCT contact, CASE WHEN event IS NULL THEN {row} ELSE 'e:' || event END FROM segment_changelog WHERE contact IS NOT NULL;")
                    } else {
                        format!("INSERT INTO relance_keys SELECT f.contact, {row} FROM relance_fp f LEFT JOIN segment_fingerprints o ON o.contact = f.contact WHERE o.fp IS DISTINCT FROM f.fp AND f.contact IS NOT NULL;
INSERT INTO relance_keys SELECT o.contact, {row} FROM segment_fingerprints o WHERE NOT EXISTS (SELECT 1 FROM relance_fp f WHERE f.contact = o.contact);")
                    };
                    let sql =
                        sql::incremental::dirty_tables_sql(&dirty, &compiled.targets, &changed);
                    since = dirty.since;
                    tx.batch_execute(&sql).map_err(pg_message)?;
                    None
                }
            }
        }
    };
    let state = stateful.then_some(sql::state::TABLE);
    let query = match &full {
        Some(_) if stateful => {
            tx.batch_execute(&sql::state::build_sql(&compiled.aggregates, snap.as_of))
                .map_err(pg_message)?;
            sql::incremental::with_state(snap.plan, snap.sources, sql::state::TABLE)
                .map_err(|e| e.to_string())?
                .sql
        }
        Some(_) => compiled.sql.clone(),
        None => {
            tx.batch_execute(&sql::incremental::restricted_tables_sql(
                snap.plan,
                snap.mapping,
                "relance_r_",
                "relance_u",
                "relance_ue",
                (!stateful).then_some(sql::incremental::Window {
                    t1: snap.as_of,
                    since: &since,
                }),
            ))
            .map_err(pg_message)?;
            let restrict = sql::Restrict {
                prefix: "relance_r_",
                dirty: "relance_dirty",
                members: "segment_members",
            };
            sql::incremental::restricted(snap.plan, snap.sources, &restrict, state)
                .map_err(|e| e.to_string())?
                .sql
        }
    };
    tx.execute(
        format!("INSERT INTO relance_new (segment, contact)\n{query}").as_str(),
        &[&stamp],
    )
    .map_err(pg_message)?;
    // The previous membership of what was evaluated; what entered and
    // exited, by set difference.
    let targets: Vec<&str> = compiled.targets.iter().map(String::as_str).collect();
    tx.batch_execute(
        "CREATE TEMPORARY TABLE relance_old (segment text COLLATE \"C\", contact text COLLATE \"C\") ON COMMIT DROP",
    )
    .map_err(pg_message)?;
    match &full {
        Some(_) => tx.execute(
            "INSERT INTO relance_old SELECT segment, contact FROM segment_members m WHERE m.segment = ANY($1)",
            &[&targets],
        ),
        // One index probe per re-evaluated pair (the pairs are few; a scan
        // of every member row would cost more).
        None => tx.execute(
            "INSERT INTO relance_old SELECT m.segment, m.contact FROM relance_dirty d JOIN segment_members m ON m.segment = d.target AND m.contact = d.contact",
            &[],
        ),
    }
    .map_err(pg_message)?;
    tx.batch_execute(
        "ANALYZE relance_new; ANALYZE relance_old;
         CREATE TEMPORARY TABLE relance_in ON COMMIT DROP AS
           SELECT segment, contact FROM relance_new EXCEPT SELECT segment, contact FROM relance_old;
         CREATE TEMPORARY TABLE relance_out ON COMMIT DROP AS
           SELECT segment, contact FROM relance_old EXCEPT SELECT segment, contact FROM relance_new;
         ANALYZE relance_in; ANALYZE relance_out",
    )
    .map_err(pg_message)?;
    tx.execute(
        "INSERT INTO segment_changes (segment, contact, change, at)
         SELECT segment, contact, 'entered', CAST(CAST($1 AS text) AS timestamptz) FROM relance_in
         UNION ALL
         SELECT segment, contact, 'exited', CAST(CAST($1 AS text) AS timestamptz) FROM relance_out",
        &[&stamp],
    )
    .map_err(pg_message)?;
    tx.batch_execute(
        "DELETE FROM segment_members m USING relance_out o WHERE m.segment = o.segment AND m.contact = o.contact",
    )
    .map_err(pg_message)?;
    tx.execute(
        "INSERT INTO segment_members (segment, contact, since)
         SELECT segment, contact, CAST(CAST($1 AS text) AS timestamptz) FROM relance_in
         ON CONFLICT (segment, contact) DO NOTHING",
        &[&stamp],
    )
    .map_err(pg_message)?;
    // What the next snapshot compares with: the log consumed, or the
    // fingerprints of everyone (full) or of the changed contacts.
    if tracking.is_some() {
        // Fingerprints are not kept (nor trusted later: the snapshot
        // records how its changes were tracked).
        tx.batch_execute("TRUNCATE segment_changelog; TRUNCATE segment_fingerprints")
            .map_err(pg_message)?;
    } else if full.is_some() {
        tx.batch_execute(
            "TRUNCATE segment_fingerprints;
             INSERT INTO segment_fingerprints SELECT contact, fp FROM relance_fp WHERE contact IS NOT NULL ON CONFLICT DO NOTHING",
        )
        .map_err(pg_message)?;
    } else {
        tx.batch_execute(
            "DELETE FROM segment_fingerprints WHERE contact IN (SELECT contact FROM relance_keys WHERE key = 'row');
             INSERT INTO segment_fingerprints SELECT contact, fp FROM relance_fp WHERE contact IN (SELECT contact FROM relance_keys WHERE key = 'row') ON CONFLICT DO NOTHING",
        )
        .map_err(pg_message)?;
    }
    let evaluated: Option<i64> = match &full {
        Some(_) => None,
        None => Some(
            tx.query_one("SELECT count(*) FROM relance_u", &[])
                .map_err(pg_message)?
                .get(0),
        ),
    };
    tx.execute(
        "INSERT INTO segment_snapshots (as_of, query_md5, events_seen, tracking) VALUES (CAST(CAST($1 AS text) AS timestamptz), $2, $3, $4)",
        &[&stamp, &query_md5, &seen_now, &label],
    )
    .map_err(pg_message)?;
    // The sizes as of this snapshot: the previous snapshot's moved by
    // what entered and exited (counting every member costs more than the
    // rest of a small incremental snapshot), else counted.
    let sizes_kept = match (&full, previous.as_ref()) {
        (None, Some((t0, ..))) => {
            let kept: i64 = tx
                .query_one(
                    "SELECT count(*) FROM segment_sizes WHERE segment = ANY($1) AND floor(extract(epoch from as_of))::bigint = $2",
                    &[&targets, t0],
                )
                .map_err(pg_message)?
                .get(0);
            kept == targets.len() as i64
        }
        _ => false,
    };
    if sizes_kept {
        tx.execute(
            "UPDATE segment_sizes s SET members = s.members + COALESCE(d.delta, 0), as_of = CAST(CAST($2 AS text) AS timestamptz)
             FROM unnest(CAST($1 AS text[])) t(segment)
             LEFT JOIN (SELECT segment, sum(delta) AS delta FROM (
                          SELECT segment, 1 AS delta FROM relance_in
                          UNION ALL SELECT segment, -1 FROM relance_out) x
                        GROUP BY segment) d ON d.segment = t.segment
             WHERE s.segment = t.segment",
            &[&targets, &stamp],
        )
        .map_err(pg_message)?;
    } else {
        tx.batch_execute("DELETE FROM segment_sizes")
            .map_err(pg_message)?;
        tx.execute(
            "INSERT INTO segment_sizes (segment, members, as_of)
             SELECT t.segment, COALESCE(c.n, 0), CAST(CAST($2 AS text) AS timestamptz) FROM unnest(CAST($1 AS text[])) t(segment)
             LEFT JOIN (SELECT segment, count(*) AS n FROM segment_members WHERE segment = ANY($1) GROUP BY segment) c
             ON c.segment = t.segment",
            &[&targets, &stamp],
        )
        .map_err(pg_message)?;
    }
    let rows = tx
        .query(
            "SELECT segment, members FROM segment_sizes WHERE segment = ANY($1) AND members > 0",
            &[&targets],
        )
        .map_err(pg_message)?;
    let changes = tx
        .query(
            "SELECT change, count(*) FROM segment_changes WHERE at = CAST(CAST($1 AS text) AS timestamptz) GROUP BY change ORDER BY change",
            &[&stamp],
        )
        .map_err(pg_message)?;
    tx.commit().map_err(pg_message)?;
    let counts: Vec<String> = changes
        .iter()
        .map(|r| format!("{} {}", r.get::<_, i64>(1), r.get::<_, String>(0)))
        .collect();
    eprintln!(
        "wrote segment_members and segment_changes as of {stamp}: {}; {} in {:.2}s",
        if counts.is_empty() {
            "no change".to_string()
        } else {
            counts.join(", ")
        },
        match (&full, evaluated) {
            (Some(why), _) => format!("every contact evaluated ({why})"),
            (None, n) => format!(
                "{} contact(s) re-evaluated (incremental since the previous snapshot)",
                n.unwrap_or(0)
            ),
        },
        started.elapsed().as_secs_f64()
    );
    Ok(rows
        .iter()
        .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1) as u64))
        .collect())
}

pub fn load(args: LoadArgs) -> ExitCode {
    let (plan, _, _) = match super::sql::project_plan(&args.path) {
        Ok(p) => p,
        Err(code) => return code,
    };
    match run_load(&args, &plan) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

/// Rows per COPY statement: a failed batch names its rows, and memory
/// stays bounded.
const BATCH: usize = 50_000;

fn run_load(args: &LoadArgs, plan: &Plan) -> Result<ExitCode, String> {
    let started = Instant::now();
    let (contacts, events) = read_inputs(plan, &args.contacts, args.events.as_deref())?;
    let mut client = connect(&args.database)?;
    let pg = |e: postgres::Error| {
        let detail = e
            .as_db_error()
            .map(|d| d.message().to_string())
            .unwrap_or_else(|| e.to_string());
        format!("PostgreSQL: {detail}")
    };
    let mut tx = client.transaction().map_err(pg)?;
    if args.replace {
        tx.batch_execute("DROP TABLE IF EXISTS contacts, events, list_members, tags")
            .map_err(pg)?;
    }
    tx.batch_execute(&schema::tables(plan, Dialect::Postgres))
        .map_err(|e| format!("{}; `--replace` drops the tables first", pg(e)))?;
    let d = Dialect::Postgres;
    let contact_cols: Vec<String> = std::iter::once("id".to_string())
        .chain(plan.schema.fields.iter().map(|f| d.ident(&f.name)))
        .collect();
    let columns = schema::event_columns(plan);
    let event_cols: Vec<String> = ["contact", "event", "at"]
        .iter()
        .map(|s| d.ident(s))
        .chain(columns.iter().map(|(c, _)| d.ident(c)))
        .collect();
    let mut rows = [0usize; 4];
    let mut bufs = [String::new(), String::new(), String::new(), String::new()];
    let statements = [
        format!("COPY contacts ({}) FROM STDIN", contact_cols.join(", ")),
        format!("COPY events ({}) FROM STDIN", event_cols.join(", ")),
        "COPY list_members (contact, \"list\") FROM STDIN".to_string(),
        "COPY tags (contact, tag) FROM STDIN".to_string(),
    ];
    let mut pending = [0usize; 4];
    let flush =
        |tx: &mut postgres::Transaction<'_>, k: usize, buf: &mut String| -> Result<(), String> {
            if buf.is_empty() {
                return Ok(());
            }
            let mut w = tx.copy_in(statements[k].as_str()).map_err(pg)?;
            w.write_all(buf.as_bytes()).map_err(|e| e.to_string())?;
            w.finish().map_err(pg)?;
            buf.clear();
            Ok(())
        };
    // Contacts, their lists and tags, then the events in the input's order
    // (not contact by contact: a file exported in time order keeps a day's
    // events together, which the time windows of `--write` read).
    let mut ids: Vec<String> = Vec::with_capacity(contacts.len());
    for i in 0..contacts.len() as u32 {
        let c = contacts.contact(i);
        let mut id = String::new();
        data::copy_text(Some(&crate::eval::Value::Text(c.id.clone())), &mut id);
        let b = &mut bufs[0];
        b.push_str(&id);
        for v in data::contact_values(plan, &c) {
            b.push('\t');
            data::copy_text(v, b);
        }
        b.push('\n');
        pending[0] += 1;
        for (k, set) in [(2, &c.lists), (3, &c.tags)] {
            for x in set {
                let b = &mut bufs[k];
                b.push_str(&id);
                b.push('\t');
                data::copy_text(Some(&crate::eval::Value::Text(x.clone())), b);
                b.push('\n');
                pending[k] += 1;
            }
        }
        ids.push(id);
        for k in [0, 2, 3] {
            if pending[k] >= BATCH {
                flush(&mut tx, k, &mut bufs[k])?;
                rows[k] += pending[k];
                pending[k] = 0;
            }
        }
    }
    for (i, e) in events.in_input_order() {
        let b = &mut bufs[1];
        b.push_str(&ids[i as usize]);
        b.push('\t');
        data::copy_text(Some(&crate::eval::Value::Text(e.name.clone())), b);
        b.push('\t');
        data::copy_text(Some(&crate::eval::Value::Timestamp(e.at)), b);
        for v in data::event_values(plan, &columns, &e) {
            b.push('\t');
            data::copy_text(v, b);
        }
        b.push('\n');
        pending[1] += 1;
        if pending[1] >= BATCH {
            flush(&mut tx, 1, &mut bufs[1])?;
            rows[1] += pending[1];
            pending[1] = 0;
        }
    }
    for k in 0..4 {
        flush(&mut tx, k, &mut bufs[k])?;
        rows[k] += pending[k];
    }
    // The indexes once the rows are in (one sort each, not one insertion
    // per row).
    tx.batch_execute(&schema::indexes(plan, Dialect::Postgres))
        .map_err(pg)?;
    tx.batch_execute("ANALYZE contacts; ANALYZE events; ANALYZE list_members; ANALYZE tags")
        .map_err(pg)?;
    tx.commit().map_err(pg)?;
    let secs = started.elapsed().as_secs_f64();
    let total: usize = rows.iter().sum();
    eprintln!(
        "loaded {} contact(s), {} event(s), {} list membership(s), {} tag(s) in {secs:.2}s ({:.0} rows/s)",
        rows[0],
        rows[1],
        rows[2],
        rows[3],
        total as f64 / secs.max(1e-9)
    );
    Ok(ExitCode::SUCCESS)
}
