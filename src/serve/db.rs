//! The server's PostgreSQL side: a small connection pool that reconnects,
//! the versioned migrations of the `relance` schema, and the `meta` table
//! (the manual clock, the window's start, the deployment's secret, the
//! current plan).
//!
//! Every table lives in the schema `relance`, so a deployment can share a
//! database with other applications. `docs/serve.md` ("The database")
//! describes each table for operators.

use std::sync::Mutex;
use std::time::Duration;

use postgres::{Client, NoTls};

/// The migrations, in order: migration `i` brings the schema to version
/// `i + 1`. Never edit one that has shipped: add a new one.
const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE relance.meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);
CREATE TABLE relance.plans (
    hash         text PRIMARY KEY,
    body         text NOT NULL,
    installed_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE relance.contacts (
    id      text COLLATE "C" PRIMARY KEY,
    num     bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    contact text NOT NULL,
    joined  bigint NOT NULL,
    state   text,
    history text NOT NULL DEFAULT '[]',
    plan    text,
    due     bigint,
    made    bigint NOT NULL DEFAULT 0,
    waiting text[] NOT NULL DEFAULT '{}',
    ended   text[] NOT NULL DEFAULT '{}'
);
CREATE INDEX contacts_due ON relance.contacts (due) WHERE due IS NOT NULL;
CREATE TABLE relance.inbox (
    seq     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    contact text COLLATE "C" NOT NULL,
    at      bigint NOT NULL,
    event   text NOT NULL
);
CREATE INDEX inbox_contact ON relance.inbox (contact, at, seq);
CREATE TABLE relance.event_ids (
    id text PRIMARY KEY
);
CREATE TABLE relance.ledger (
    contact      text COLLATE "C" NOT NULL,
    made         bigint NOT NULL,
    seq          bigint UNIQUE,
    at           bigint NOT NULL,
    scenario     text COLLATE "C" NOT NULL,
    template     text NOT NULL,
    channel      text NOT NULL,
    line         text NOT NULL,
    plan         text NOT NULL,
    key          text NOT NULL,
    status       text NOT NULL DEFAULT 'pending',
    error        text,
    attempts     integer NOT NULL DEFAULT 0,
    next_attempt bigint NOT NULL DEFAULT 0,
    sent_at      bigint,
    made_at      bigint NOT NULL DEFAULT (extract(epoch FROM clock_timestamp()) * 1000)::bigint,
    PRIMARY KEY (contact, made)
);
CREATE INDEX ledger_unsequenced ON relance.ledger (at) WHERE seq IS NULL;
CREATE INDEX ledger_pending ON relance.ledger (seq) WHERE status = 'pending' AND seq IS NOT NULL;
CREATE TABLE relance.counters (
    name  text PRIMARY KEY,
    value bigint NOT NULL
);
"#];

/// The schema version this relance writes and reads.
pub const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

/// A database error as one line for the operator.
pub fn error(e: postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("database: {} ({})", db.message(), db.code().code()),
        None => format!("database: {e}"),
    }
}

/// Connections to one database, kept for reuse; a broken one is dropped
/// and the next [`Pool::get`] connects again, so a restarted PostgreSQL
/// costs the requests in flight, not the server.
pub struct Pool {
    url: String,
    idle: Mutex<Vec<Client>>,
}

/// A connection borrowed from a [`Pool`]; it goes back on drop unless it
/// broke.
pub struct Conn<'a> {
    pool: &'a Pool,
    client: Option<Client>,
}

impl std::ops::Deref for Conn<'_> {
    type Target = Client;
    fn deref(&self) -> &Client {
        self.client.as_ref().expect("a live connection")
    }
}

impl std::ops::DerefMut for Conn<'_> {
    fn deref_mut(&mut self) -> &mut Client {
        self.client.as_mut().expect("a live connection")
    }
}

impl Drop for Conn<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.client.take()
            && !c.is_closed()
            && let Ok(mut idle) = self.pool.idle.lock()
        {
            idle.push(c);
        }
    }
}

impl Pool {
    pub fn new(url: &str) -> Pool {
        Pool {
            url: url.to_string(),
            idle: Mutex::new(Vec::new()),
        }
    }

    /// A connection: an idle one, or a new one.
    pub fn get(&self) -> Result<Conn<'_>, String> {
        let reused = self.idle.lock().ok().and_then(|mut v| v.pop());
        let client = match reused {
            Some(c) if !c.is_closed() => c,
            _ => connect(&self.url)?,
        };
        Ok(Conn {
            pool: self,
            client: Some(client),
        })
    }

    /// Drops every idle connection (after the database restarted).
    pub fn reset(&self) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.clear();
        }
    }
}

/// One connection, with the reason it failed in the operator's words.
pub fn connect(url: &str) -> Result<Client, String> {
    let mut config: postgres::Config = url.parse().map_err(|e| {
        format!("`--database {}` is not a PostgreSQL URL ({e}): write it as postgres://USER@HOST:PORT/DB", redact(url))
    })?;
    config.connect_timeout(Duration::from_secs(5));
    config.application_name("relance serve");
    config.connect(NoTls).map_err(|e| {
        format!(
            "cannot connect to the database {}: {}",
            redact(url),
            error(e)
        )
    })
}

/// The URL without its password.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Brings the schema to [`SCHEMA_VERSION`] in one transaction, under a
/// lock that serialises the processes starting together. A database whose
/// schema is newer than this relance is refused. Returns the version found
/// before migrating (0: a new database).
pub fn migrate(c: &mut Client) -> Result<i32, String> {
    let mut tx = c.transaction().map_err(error)?;
    tx.batch_execute(
        "SELECT pg_advisory_xact_lock(7205759403792793);
         CREATE SCHEMA IF NOT EXISTS relance;
         CREATE TABLE IF NOT EXISTS relance.migrations (
             version    integer PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         );",
    )
    .map_err(error)?;
    let found: i32 = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM relance.migrations",
            &[],
        )
        .map_err(error)?
        .get(0);
    if found > SCHEMA_VERSION {
        return Err(format!(
            "the database's relance schema is at version {found}, newer than this relance knows ({SCHEMA_VERSION}): run the relance that migrated it, or a newer one"
        ));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        tx.batch_execute(sql)
            .map_err(|e| format!("migration {} failed: {}", i + 1, error(e)))?;
        tx.execute(
            "INSERT INTO relance.migrations (version) VALUES ($1)",
            &[&(i as i32 + 1)],
        )
        .map_err(error)?;
    }
    tx.commit().map_err(error)?;
    Ok(found)
}

/// A value of `relance.meta`.
pub fn meta(c: &mut impl postgres::GenericClient, key: &str) -> Result<Option<String>, String> {
    Ok(
        c.query_opt("SELECT value FROM relance.meta WHERE key = $1", &[&key])
            .map_err(error)?
            .map(|r| r.get(0)),
    )
}

/// Sets a value of `relance.meta`.
pub fn set_meta(
    c: &mut impl postgres::GenericClient,
    key: &str,
    value: &str,
) -> Result<(), String> {
    c.execute(
        "INSERT INTO relance.meta (key, value) VALUES ($1, $2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        &[&key, &value],
    )
    .map_err(error)?;
    Ok(())
}

/// Adds to a counter of `relance.counters` (shared by every process).
pub fn count(c: &mut impl postgres::GenericClient, name: &str, n: i64) -> Result<(), String> {
    if n == 0 {
        return Ok(());
    }
    c.execute(
        "INSERT INTO relance.counters (name, value) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE SET value = relance.counters.value + excluded.value",
        &[&name, &n],
    )
    .map_err(error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_not_printed() {
        assert_eq!(
            redact("postgres://app:s3cret@db:5432/x"),
            "postgres://app:***@db:5432/x"
        );
        assert_eq!(redact("postgres://app@db/x"), "postgres://app@db/x");
        assert_eq!(redact("not a url"), "not a url");
    }
}
