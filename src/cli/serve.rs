//! `relance serve`: parses the flags, checks the plan, the database and
//! the address, then runs the server's threads (`crate::serve`) until
//! SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::run::clock::rfc3339;
use crate::run::input::parse_timestamp;
use crate::serve::{self, ClockMode, Loaded, Shared, db};

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// The plan written by `relance build`.
    #[arg(long, default_value = "build/plan.json")]
    pub plan: PathBuf,
    /// The PostgreSQL database: postgres://USER[:PASSWORD]@HOST:PORT/DB.
    #[arg(long, value_name = "URL")]
    pub database: String,
    /// The address of the HTTP API (port 0: a free port, printed at start).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// A file holding the API's bearer token (required unless the address
    /// is a loopback one).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// The SMTP server email goes through: smtp://HOST:PORT or smtps://HOST:PORT.
    #[arg(long, value_name = "URL")]
    pub smtp: Option<String>,
    #[arg(long, value_name = "USER")]
    pub smtp_user: Option<String>,
    /// The environment variable that holds the SMTP password.
    #[arg(long, value_name = "VAR")]
    pub smtp_password_env: Option<String>,
    /// The provider endpoint SMS are POSTed to.
    #[arg(long, value_name = "URL")]
    pub sms_url: Option<String>,
    /// The provider endpoint push notifications are POSTed to.
    #[arg(long, value_name = "URL")]
    pub push_url: Option<String>,
    /// The endpoint tasks are POSTed to (a CRM or a relay in front of it).
    #[arg(long, value_name = "URL")]
    pub task_url: Option<String>,
    /// Staging and tests: send every webhook to this origin instead of its
    /// rendered URL's (path and query kept), e.g. http://127.0.0.1:9000.
    #[arg(long, value_name = "URL")]
    pub webhook_base: Option<String>,
    /// Seconds before a delivery that failed for a passing reason (a
    /// timeout, a 4xx of SMTP, a 5xx or 429 of HTTP) is tried again; each
    /// later wait doubles, up to 120 times this, 12 attempts in all.
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0)]
    pub retry_first: f64,
    /// The public address of this server, for the recipients'
    /// unsubscribe links (default: http://LISTEN).
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
    /// `system`, or `manual`: time moves only by `POST /v1/clock`.
    #[arg(long, value_enum, default_value = "system")]
    pub clock: ClockMode,
    /// Where a new database's clock starts (RFC 3339), as `relance run
    /// --from`: earlier events are history. Ignored on an existing database.
    #[arg(long, value_name = "TS")]
    pub from: Option<String>,
    /// Everything but delivery: the ledger only.
    #[arg(long)]
    pub dry_run: bool,
    /// Create or migrate the database schema, then exit.
    #[arg(long)]
    pub migrate_only: bool,
    /// Engine threads of this process.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Sender threads of this process (each may send a message twice if
    /// the process dies between the receiver's answer and its commit).
    #[arg(long, default_value_t = 2)]
    pub senders: usize,
    /// The largest request body accepted (bytes); larger ones get 413.
    #[arg(long, default_value_t = 32 << 20)]
    pub max_body: usize,
}

pub fn serve(args: ServeArgs) -> ExitCode {
    match start(args) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

/// 32 random bytes, from the kernel.
fn random_secret() -> Result<Vec<u8>, String> {
    use std::io::Read;
    let mut b = vec![0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .map_err(|e| format!("cannot read /dev/urandom for the deployment's secret: {e}"))?;
    Ok(b)
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn start(args: ServeArgs) -> Result<ExitCode, String> {
    let loaded = Loaded::read(&args.plan)?;
    let mut c = db::connect(&args.database)?;
    let before = db::migrate(&mut c)?;
    if args.migrate_only {
        eprintln!(
            "relance serve: the database schema is at version {} (was {before})",
            db::SCHEMA_VERSION
        );
        return Ok(ExitCode::SUCCESS);
    }
    let from = match &args.from {
        Some(s) => Some(parse_timestamp(s).ok_or_else(|| {
            format!("`--from {s}` is not an RFC 3339 timestamp such as 2026-01-15T09:00:00Z")
        })?),
        None => None,
    };
    // A new database starts here; an existing one goes on where it was.
    let secret = {
        let mut tx = c.transaction().map_err(db::error)?;
        tx.execute("SELECT pg_advisory_xact_lock(7205759403792795)", &[])
            .map_err(db::error)?;
        let secret = match db::meta(&mut tx, "secret")? {
            Some(s) => unhex(&s).ok_or("the database's secret is damaged (relance.meta)")?,
            None => {
                let s = random_secret()?;
                db::set_meta(&mut tx, "secret", &crate::deliver::hex(&s))?;
                s
            }
        };
        match db::meta(&mut tx, "from")? {
            Some(f) => {
                if let (Some(given), Ok(f)) = (from, f.parse::<i64>())
                    && given != f
                {
                    eprintln!(
                        "relance serve: warning: `--from` is ignored: the database started at {}",
                        rfc3339(f)
                    );
                }
            }
            None => {
                let f = from.unwrap_or_else(serve::wall);
                db::set_meta(&mut tx, "from", &f.to_string())?;
                db::set_meta(&mut tx, "clock", &f.to_string())?;
            }
        }
        let clock = match args.clock {
            ClockMode::System => serve::wall(),
            ClockMode::Manual => db::meta(&mut tx, "clock")?
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(serve::wall),
        };
        if serve::upgrade::install(&mut tx, &loaded, clock)? {
            eprintln!("relance serve: plan {} installed", &loaded.hash[..12]);
        }
        tx.commit().map_err(db::error)?;
        secret
    };
    drop(c);
    let addr: SocketAddr = args.listen.parse().map_err(|_| {
        format!(
            "`--listen {}` is not an address such as 127.0.0.1:8080",
            args.listen
        )
    })?;
    let token = match &args.token_file {
        Some(p) => {
            let t = std::fs::read_to_string(p)
                .map_err(|e| format!("cannot read the token file `{}`: {e}", p.display()))?;
            let t = t.trim().to_string();
            if t.len() < 16 {
                return Err(format!(
                    "the token in `{}` is too short: use at least 16 random characters",
                    p.display()
                ));
            }
            Some(t)
        }
        None if addr.ip().is_loopback() => None,
        None => {
            return Err(format!(
                "refusing to listen on {addr} without a token: give `--token-file FILE`, or listen on 127.0.0.1"
            ));
        }
    };
    let smtp_password = match &args.smtp_password_env {
        Some(var) => Some(std::env::var(var).map_err(|_| {
            format!("`--smtp-password-env {var}`: the environment variable `{var}` is not set")
        })?),
        None => None,
    };
    let server =
        tiny_http::Server::http(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let bound = server
        .server_addr()
        .to_ip()
        .map_or(addr.to_string(), |a| a.to_string());
    let public_url = args
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{bound}"))
        .trim_end_matches('/')
        .to_string();
    let shared = Shared {
        pool: db::Pool::new(&args.database),
        plan: RwLock::new(Arc::new(loaded)),
        plan_path: args.plan.clone(),
        clock: args.clock,
        token,
        secret,
        public_url,
        dry_run: args.dry_run,
        stop: Default::default(),
        metrics: Default::default(),
        max_body: args.max_body,
        plans: Default::default(),
        options: serve::Options {
            smtp: args.smtp.clone(),
            smtp_user: args.smtp_user.clone(),
            smtp_password,
            sms_url: args.sms_url.clone(),
            push_url: args.push_url.clone(),
            task_url: args.task_url.clone(),
            webhook_base: args.webhook_base.clone(),
            retry_first: std::time::Duration::try_from_secs_f64(args.retry_first)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or("--retry-first: a positive number of seconds")?,
            senders: args.senders,
            workers: args.workers,
        },
    };
    serve::install_signals();
    {
        let mut c = shared.pool.get()?;
        let now = shared.now(&mut *c)?;
        eprintln!(
            "relance serve: listening on http://{bound} (plan {}, {} clock at {}, schema v{})",
            &shared.loaded().hash[..12],
            match args.clock {
                ClockMode::System => "system",
                ClockMode::Manual => "manual",
            },
            rfc3339(now),
            db::SCHEMA_VERSION
        );
    }
    let server = &server;
    let shared = &shared;
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(move || serve::api::http_loop(shared, server));
        }
        for _ in 0..args.workers.max(1) {
            s.spawn(move || serve::engine_loop(shared));
        }
        if !args.dry_run {
            for _ in 0..args.senders.max(1) {
                s.spawn(move || serve::sender::sender_loop(shared));
            }
        }
        loop {
            let (term, hup) = serve::signals();
            if term {
                eprintln!("relance serve: stopping (SIGTERM)");
                shared.stop.store(true, Ordering::SeqCst);
                server.unblock();
                break;
            }
            if hup {
                match serve::upgrade::reload(shared) {
                    Ok(msg) => eprintln!("relance serve: {msg}"),
                    Err(e) => eprintln!("relance serve: the plan was not reloaded: {e}"),
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    eprintln!("relance serve: stopped");
    Ok(ExitCode::SUCCESS)
}
