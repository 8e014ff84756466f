//! `relance serve`: the plan run for real. The journey step is the one of
//! `relance run` ([`crate::run::Journey`]); this module is its durable
//! host: contacts, their states and histories, pending events and the
//! ledger of messages live in PostgreSQL ([`db`]); [`engine`] steps due
//! contacts in transactions and numbers the ledger; [`ingest`] takes
//! contacts and events from the HTTP API ([`api`]); [`sender`] delivers
//! numbered ledger lines through [`crate::deliver`].
//!
//! Threads, all sharing one [`Shared`]: HTTP workers, engine workers (step
//! what is due, then number the ledger), sender workers, and the signal
//! watcher (SIGTERM stops, SIGHUP reloads the plan). Nothing is held only
//! in memory: a process killed at any instant loses at most the
//! transactions it had not committed, which its restart (or another
//! process) redoes.

pub mod api;
pub mod db;
pub mod engine;
pub mod ingest;
pub mod sender;
pub mod upgrade;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::plan::Plan;

/// A plan as the server runs it.
pub struct Loaded {
    pub plan: Plan,
    /// SHA-256 of the plan file's bytes: recorded on every ledger line.
    pub hash: String,
}

impl Loaded {
    /// Reads, validates and compiles the plan at `path`.
    pub fn read(path: &std::path::Path) -> Result<Loaded, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the plan `{}`: {e}", path.display()))?;
        Loaded::parse(&text, &path.display().to_string())
    }

    /// A plan from its text; `name` names it in errors.
    pub fn parse(text: &str, name: &str) -> Result<Loaded, String> {
        let plan = crate::plan::parse_plan(text).map_err(|e| {
            format!("{name}: {e}\n  this is not a plan this relance can run: rebuild it with `relance build`")
        })?;
        crate::run::Program::compile(&plan).map_err(|e| format!("{name}: {e}"))?;
        Ok(Loaded {
            plan,
            hash: {
                use sha2::{Digest, Sha256};
                crate::deliver::hex(&Sha256::digest(text.as_bytes()))
            },
        })
    }
}

/// Where time comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ClockMode {
    /// The machine's clock.
    System,
    /// Time moves only by `POST /v1/clock` (tests, backfills, demos).
    Manual,
}

/// In-process counters for `/metrics` (the shared ones are in the
/// database's `relance.counters`).
#[derive(Default)]
pub struct Metrics {
    pub requests: AtomicU64,
    pub wake_lag_ms: AtomicU64,
}

/// What every thread of the server shares.
pub struct Shared {
    pub pool: db::Pool,
    pub plan: RwLock<Arc<Loaded>>,
    pub plan_path: PathBuf,
    pub clock: ClockMode,
    pub token: Option<String>,
    /// The deployment's secret: signs unsubscribe tokens and webhooks.
    pub secret: Vec<u8>,
    pub public_url: String,
    pub dry_run: bool,
    pub stop: AtomicBool,
    pub metrics: Metrics,
    pub max_body: usize,
    pub options: Options,
    /// Plans met so far by hash (the states of contacts not yet moved
    /// onto the current plan were made with one of them).
    pub plans: std::sync::Mutex<std::collections::HashMap<String, Arc<Loaded>>>,
}

/// The delivery settings.
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub smtp: Option<String>,
    pub smtp_user: Option<String>,
    pub smtp_password: Option<String>,
    pub sms_url: Option<String>,
    pub push_url: Option<String>,
    pub task_url: Option<String>,
    pub webhook_base: Option<String>,
    /// The first wait before a failed delivery is tried again; the later
    /// ones scale with it (`deliver::http::retry_delay` for 30 s).
    pub retry_first: Duration,
    pub senders: usize,
    pub workers: usize,
}

impl Shared {
    /// The plan now.
    pub fn loaded(&self) -> Arc<Loaded> {
        self.plan
            .read()
            .map(|p| Arc::clone(&p))
            .unwrap_or_else(|p| Arc::clone(&p.into_inner()))
    }

    /// The runner's clock now: the manual clock's last committed instant,
    /// or the machine's time.
    pub fn now(&self, c: &mut impl postgres::GenericClient) -> Result<i64, String> {
        match self.clock {
            ClockMode::System => Ok(wall()),
            ClockMode::Manual => db::meta(c, "clock")?
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| {
                    "the database has no clock: was it initialised by relance serve?".into()
                }),
        }
    }

    /// Keeps `loaded` for the states made with it.
    pub fn remember(&self, loaded: Arc<Loaded>) {
        if let Ok(mut m) = self.plans.lock() {
            m.insert(loaded.hash.clone(), loaded);
        }
    }

    /// The plan with this hash: met before, or read from `relance.plans`.
    pub fn plan_by_hash(
        &self,
        c: &mut impl postgres::GenericClient,
        hash: &str,
    ) -> Result<Arc<Loaded>, String> {
        if let Some(p) = self.plans.lock().ok().and_then(|m| m.get(hash).cloned()) {
            return Ok(p);
        }
        let body: String = c
            .query_opt("SELECT body FROM relance.plans WHERE hash = $1", &[&hash])
            .map_err(db::error)?
            .ok_or_else(|| format!("plan {hash} is not in relance.plans"))?
            .get(0);
        let plan = crate::plan::parse_plan(&body)
            .map_err(|e| format!("plan {hash} in relance.plans does not load: {e}"))?;
        let loaded = Arc::new(Loaded {
            plan,
            hash: hash.to_string(),
        });
        self.remember(Arc::clone(&loaded));
        Ok(loaded)
    }

    /// Follows the database's current plan (another process or a SIGHUP
    /// may have switched it); returns the plan to step with.
    pub fn current(&self, c: &mut impl postgres::GenericClient) -> Result<Arc<Loaded>, String> {
        let hash = db::meta(c, "plan")?.ok_or("the database has no plan")?;
        let mine = self.loaded();
        if mine.hash == hash {
            return Ok(mine);
        }
        let p = self.plan_by_hash(c, &hash)?;
        if let Ok(mut w) = self.plan.write() {
            *w = Arc::clone(&p);
        }
        Ok(p)
    }

    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// The machine's time, unix seconds.
pub fn wall() -> i64 {
    wall_ms().div_euclid(1000)
}

/// The machine's time in milliseconds (the ledger's `made_at`).
pub fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Sleeps up to `d`, waking early when the server stops.
pub fn nap(shared: &Shared, d: Duration) {
    let step = Duration::from_millis(20);
    let mut left = d;
    while !left.is_zero() && !shared.stopping() {
        let s = left.min(step);
        std::thread::sleep(s);
        left -= s;
    }
}

/// An engine worker: steps what is due, numbers the ledger, sleeps a
/// little when there is nothing to do. A database error is logged and
/// retried after a pause (PostgreSQL restarting, say).
pub fn engine_loop(shared: &Shared) {
    let mut backoff = Duration::from_millis(100);
    while !shared.stopping() {
        match engine_pass(shared) {
            Ok(true) => backoff = Duration::from_millis(100),
            Ok(false) => {
                backoff = Duration::from_millis(100);
                nap(shared, Duration::from_millis(50));
            }
            Err(e) => {
                eprintln!(
                    "relance serve: engine: {e}; retrying in {} ms",
                    backoff.as_millis()
                );
                shared.pool.reset();
                nap(shared, backoff);
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// One pass: `Ok(true)` when it stepped contacts.
fn engine_pass(shared: &Shared) -> Result<bool, String> {
    let clock = {
        let mut c = shared.pool.get()?;
        match shared.clock {
            // The current second is under way: what is due in it is due
            // now (an event of this second that comes after is late, and
            // applied at the contact's present).
            ClockMode::System => shared.now(&mut *c)? + 1,
            ClockMode::Manual => shared.now(&mut *c)?,
        }
    };
    let pass = engine::step_due(shared, clock)?;
    if pass.contacts == 0 {
        let mut c = shared.pool.get()?;
        engine::sequence(&mut *c, clock)?;
        return Ok(false);
    }
    Ok(true)
}

/// Signals seen by the handler (SIGTERM/SIGINT: stop; SIGHUP: reload).
static TERM: AtomicBool = AtomicBool::new(false);
static HUP: AtomicBool = AtomicBool::new(false);

#[cfg(unix)]
extern "C" fn on_signal(sig: libc::c_int) {
    if sig == libc::SIGHUP {
        HUP.store(true, Ordering::SeqCst);
    } else {
        TERM.store(true, Ordering::SeqCst);
    }
}

/// Installs the handlers of SIGTERM, SIGINT and SIGHUP.
#[allow(unsafe_code)]
pub fn install_signals() {
    #[cfg(unix)]
    // SAFETY: the handler only stores to atomics, which is
    // async-signal-safe.
    unsafe {
        let h = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::signal(libc::SIGTERM, h);
        libc::signal(libc::SIGINT, h);
        libc::signal(libc::SIGHUP, h);
    }
}

/// Whether SIGTERM came; whether SIGHUP came since the last call.
pub fn signals() -> (bool, bool) {
    (
        TERM.load(Ordering::SeqCst),
        HUP.swap(false, Ordering::SeqCst),
    )
}

/// A contact's fields in the contacts JSONL form (what `POST /v1/contacts`
/// takes): timestamps in RFC 3339, dates as `YYYY-MM-DD`, sets as arrays.
pub fn contact_json(c: &crate::eval::Contact) -> serde_json::Map<String, serde_json::Value> {
    use crate::eval::Value;
    use serde_json::Value as J;
    c.fields
        .iter()
        .map(|(k, v)| {
            let j = match v {
                Value::Text(t) => J::String(t.clone()),
                Value::Number(n) => serde_json::Number::from_f64(*n).map_or(J::Null, J::Number),
                Value::Bool(b) => J::Bool(*b),
                Value::Timestamp(t) => J::String(crate::run::clock::rfc3339(*t)),
                Value::Date(d) => J::String(d.to_string()),
                Value::Set(s) => J::Array(s.iter().cloned().map(J::String).collect()),
            };
            (k.clone(), j)
        })
        .collect()
}

/// The contact line (`id`, fields, `lists`, `tags`) of a contact, as
/// [`crate::deliver`] composes messages from.
pub fn contact_line(c: &crate::eval::Contact) -> serde_json::Map<String, serde_json::Value> {
    use serde_json::Value as J;
    let mut m = contact_json(c);
    m.insert("id".into(), J::String(c.id.clone()));
    m.insert(
        "lists".into(),
        J::Array(c.lists.iter().cloned().map(J::String).collect()),
    );
    m.insert(
        "tags".into(),
        J::Array(c.tags.iter().cloned().map(J::String).collect()),
    );
    m
}
