//! `relance serve` end to end, on a real PostgreSQL: the ledger equals
//! `relance run`'s outbox for the same plan, inputs and window (on
//! `campaigns/` and on generated bases), also when the server is killed
//! with SIGKILL again and again while the clock advances, and when several
//! processes share one database; and the API's contract (tokens, limits,
//! rejected lines, duplicates, the clock).
//!
//! Delivery: emails to a real SMTP server (PyPI's `aiosmtpd`), webhooks,
//! tasks, SMS and push to an HTTP receiver, an SMTP server that is down
//! then back, the recipients' signed unsubscribe links.
//!
//! PostgreSQL comes from `RELANCE_TEST_POSTGRES` (`.ci/run` starts one with
//! `.ci/postgres`). Under `CI` a missing database fails the tests; elsewhere
//! they are skipped with a warning.

#[path = "deliver/mailbox.rs"]
mod mailbox;
#[path = "deliver/receiver.rs"]
mod receiver;
#[path = "../benches/synth/runbase.rs"]
mod runbase;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_relance");
const FROM: &str = "2026-11-01T00:00:00Z";
const UNTIL: &str = "2026-12-08T00:00:00Z";
const DAY: i64 = 86_400;

// ---------------------------------------------------------------- helpers

/// The test cluster's URL, or `None` (skip) outside CI.
fn postgres() -> Option<String> {
    match std::env::var("RELANCE_TEST_POSTGRES") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "RELANCE_TEST_POSTGRES is not set under CI: .ci/run starts PostgreSQL with .ci/postgres"
            );
            eprintln!(
                "warning: RELANCE_TEST_POSTGRES is not set: the relance serve tests are SKIPPED"
            );
            None
        }
    }
}

/// A new, empty database on the cluster; its URL.
fn fresh_db(base: &str, name: &str) -> String {
    let mut c =
        postgres::Client::connect(base, postgres::NoTls).expect("connect to the test cluster");
    let name = format!("{name}_{}", std::process::id());
    c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .expect("drop the test database");
    c.batch_execute(&format!("CREATE DATABASE {name}"))
        .expect("create the test database");
    let (head, _) = base.rsplit_once('/').expect("a URL with a database");
    format!("{head}/{name}")
}

fn tmp(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("relance-serve-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// The plan of `campaigns/`, built once.
fn plan() -> &'static Path {
    static PLAN: OnceLock<PathBuf> = OnceLock::new();
    PLAN.get_or_init(|| {
        let out = tmp("plan");
        let campaigns = Path::new(env!("CARGO_MANIFEST_DIR")).join("campaigns");
        let r = Command::new(BIN)
            .args(["build", "--color", "never", "--out"])
            .arg(&out)
            .arg(&campaigns)
            .output()
            .expect("run relance build");
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        out.join("plan.json")
    })
}

/// `relance run`'s outbox lines for these inputs.
fn simulate(plan: &Path, contacts: &Path, events: &Path, until: &str) -> Vec<String> {
    let r = Command::new(BIN)
        .arg("run")
        .arg("--plan")
        .arg(plan)
        .arg("--contacts")
        .arg(contacts)
        .arg("--events")
        .arg(events)
        .args(["--from", FROM, "--until", until])
        .output()
        .expect("run relance run");
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    String::from_utf8(r.stdout)
        .expect("UTF-8")
        .lines()
        .map(str::to_string)
        .collect()
}

/// A running `relance serve`, killed when dropped.
struct Serve {
    child: Child,
    addr: String,
    log: PathBuf,
}

impl Serve {
    /// With the manual clock, from [`FROM`].
    fn start(db: &str, plan: &Path, extra: &[&str], log: &Path) -> Serve {
        let manual = ["--clock", "manual", "--from", FROM];
        Serve::spawn(db, plan, &[&manual, extra].concat(), log)
    }

    fn spawn(db: &str, plan: &Path, extra: &[&str], log: &Path) -> Serve {
        let mut cmd = Command::new(BIN);
        cmd.arg("serve")
            .arg("--plan")
            .arg(plan)
            .args(["--database", db, "--listen", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start relance serve");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        let log_path = log.to_path_buf();
        std::thread::spawn(move || {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_path)
                .expect("log");
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = writeln!(f, "{line}");
                if !sent && let Some(i) = line.find("listening on http://") {
                    let rest = &line[i + "listening on http://".len()..];
                    let addr = rest.split_whitespace().next().unwrap_or("").to_string();
                    let _ = tx.send(addr);
                    sent = true;
                }
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "relance serve did not start:\n{}",
                    std::fs::read_to_string(log).unwrap_or_default()
                );
            }
        };
        Serve {
            child,
            addr,
            log: log.to_path_buf(),
        }
    }

    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn request(&self, method: &str, path: &str, body: &[u8]) -> (u16, String) {
        request(&self.addr, method, path, body, None).unwrap_or_else(|e| {
            panic!(
                "{method} {path}: {e}\nserver log:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            )
        })
    }

    fn ok(&self, method: &str, path: &str, body: &[u8]) -> Value {
        let (status, text) = self.request(method, path, body);
        assert_eq!(status, 200, "{method} {path}: {text}");
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    }

    fn outbox(&self) -> Vec<Value> {
        let (status, text) = self.request("GET", "/v1/outbox?limit=100000", b"");
        assert_eq!(status, 200, "{text}");
        text.lines()
            .map(|l| serde_json::from_str(l).expect("an outbox line is JSON"))
            .collect()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request (`Connection: close`); the status and the body.
fn request(
    addr: &str,
    method: &str,
    path: &str,
    body: &[u8],
    auth: Option<&str>,
) -> Result<(u16, String), String> {
    let mut s = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(300)))
        .map_err(|e| e.to_string())?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(t) = auth {
        head.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).map_err(|e| e.to_string())?;
    s.write_all(body).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, rest) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no HTTP answer: {text:?}"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line: {head}"))?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    Ok((status, body))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// The outbox keys of a ledger line (what `relance run` writes).
fn as_outbox(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        for k in ["seq", "status", "message_id", "plan", "attempts", "error"] {
            o.remove(k);
        }
    }
    v
}

fn assert_same(expected: &[String], ledger: Vec<Value>, what: &str) {
    let expected: Vec<Value> = expected
        .iter()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    let seqs: Vec<i64> = ledger
        .iter()
        .map(|v| v["seq"].as_i64().unwrap_or(-1))
        .collect();
    let got: Vec<Value> = ledger.into_iter().map(as_outbox).collect();
    for (i, (e, g)) in expected.iter().zip(&got).enumerate() {
        assert_eq!(e, g, "{what}: line {} differs", i + 1);
    }
    assert_eq!(
        expected.len(),
        got.len(),
        "{what}: not the same number of lines"
    );
    let want: Vec<i64> = (1..=seqs.len() as i64).collect();
    assert_eq!(seqs, want, "{what}: seq numbers are not 1..n");
}

fn rfc3339(t: i64) -> String {
    jiff::Timestamp::from_second(t)
        .expect("a timestamp")
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn ts(s: &str) -> i64 {
    s.parse::<jiff::Timestamp>().expect("timestamp").as_second()
}

/// A generated base (the runner benchmark's generator) written to `dir`.
fn base(dir: &Path, contacts: u64, events: u64, seed: u64) -> (PathBuf, PathBuf) {
    let cfg = runbase::Config {
        contacts,
        events,
        seed,
        ..runbase::Config::default()
    };
    let mut stats = runbase::Stats::default();
    let mut c = Vec::new();
    let mut state = runbase::write_contacts(&cfg, &mut c, &mut stats).expect("contacts");
    let mut e = Vec::new();
    runbase::write_events(&cfg, &mut state, &mut e, &mut stats).expect("events");
    let (cp, ep) = (dir.join("contacts.jsonl"), dir.join("events.jsonl"));
    std::fs::write(&cp, c).expect("write");
    std::fs::write(&ep, e).expect("write");
    (cp, ep)
}

/// A copy of `examples/autoresponder` in `dir`, to edit.
fn autoresponder(dir: &Path) -> PathBuf {
    let project = dir.join("project");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/autoresponder");
    let r = Command::new("cp")
        .arg("-r")
        .arg(&src)
        .arg(&project)
        .status()
        .expect("cp");
    assert!(r.success());
    project
}

/// `relance build project --out out`; the plan's path.
fn build_plan(project: &Path, out: &Path) -> PathBuf {
    let r = Command::new(BIN)
        .args(["build", "--color", "never", "--out"])
        .arg(out)
        .arg(project)
        .output()
        .expect("build");
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    out.join("plan.json")
}

/// Posts a JSONL file in requests of `per` lines.
fn post_lines(s: &Serve, path: &str, file: &Path, per: usize) {
    let text = std::fs::read_to_string(file).expect("read");
    let lines: Vec<&str> = text.lines().collect();
    for chunk in lines.chunks(per) {
        let v = s.ok("POST", path, chunk.join("\n").as_bytes());
        assert_eq!(v["rejected"], serde_json::json!([]), "{path}: {v}");
    }
}

fn advance(s: &Serve, to: &str) -> Value {
    s.ok(
        "POST",
        "/v1/clock",
        format!("{{\"now\":\"{to}\"}}").as_bytes(),
    )
}

// ---------------------------------------------------------------- tests

#[test]
fn campaigns_ledger_equals_the_simulation() {
    let Some(pg) = postgres() else { return };
    let dir = tmp("campaigns");
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("campaigns/data");
    let (contacts, events) = (data.join("contacts.jsonl"), data.join("events.jsonl"));
    let expected = simulate(plan(), &contacts, &events, UNTIL);
    assert!(expected.len() > 100, "the sample base sends messages");
    // One advance to the end, then the same day by day.
    for (name, steps) in [("once", 1i64), ("daily", 37)] {
        let db = fresh_db(&pg, &format!("campaigns_{name}"));
        let s = Serve::start(
            &db,
            plan(),
            &["--dry-run"],
            &dir.join(format!("{name}.log")),
        );
        post_lines(&s, "/v1/contacts", &contacts, 1000);
        post_lines(&s, "/v1/events", &events, 100);
        let (from, until) = (ts(FROM), ts(UNTIL));
        for k in 1..=steps {
            advance(&s, &rfc3339(from + (until - from) * k / steps));
        }
        let ledger = s.outbox();
        // A dry run's lines are never delivered, even by a later process.
        for l in &ledger {
            assert_eq!(l["status"], "skipped", "{l}");
            assert_eq!(l["error"], "dry run: not delivered", "{l}");
        }
        assert_same(&expected, ledger, name);
    }
}

#[test]
fn generated_bases_equal_the_simulation() {
    let Some(pg) = postgres() else { return };
    for seed in [1u64, 2] {
        let dir = tmp(&format!("gen{seed}"));
        let (contacts, events) = base(&dir, 300, 4_000, seed);
        let until = rfc3339(ts(FROM) + 30 * DAY);
        let expected = simulate(plan(), &contacts, &events, &until);
        assert!(!expected.is_empty());
        let db = fresh_db(&pg, &format!("gen{seed}"));
        let s = Serve::start(&db, plan(), &["--dry-run"], &dir.join("serve.log"));
        post_lines(&s, "/v1/contacts", &contacts, 1000);
        post_lines(&s, "/v1/events", &events, 1000);
        // Uneven steps: 5 h 17 min, so that steps fall inside days.
        let (mut t, end) = (ts(FROM), ts(&until));
        while t < end {
            t = (t + 19_020).min(end);
            advance(&s, &rfc3339(t));
        }
        assert_same(&expected, s.outbox(), &format!("seed {seed}"));
    }
}

/// SIGKILL at random moments of the clock's advance, at least 20 times;
/// each restart resumes; the ledger is the simulation's, no line twice.
#[test]
fn kill_9_while_the_clock_advances_loses_nothing() {
    let Some(pg) = postgres() else { return };
    let dir = tmp("kill");
    let (contacts, events) = base(&dir, 1_500, 20_000, 7);
    let until = rfc3339(ts(FROM) + 30 * DAY);
    let expected = simulate(plan(), &contacts, &events, &until);
    let db = fresh_db(&pg, "kill");
    let log = dir.join("serve.log");
    let mut s = Serve::start(&db, plan(), &["--dry-run", "--workers", "2"], &log);
    post_lines(&s, "/v1/contacts", &contacts, 1000);
    post_lines(&s, "/v1/events", &events, 1000);
    let (mut t, end) = (ts(FROM), ts(&until));
    let mut rng = runbase::Rng::new(7, 99);
    let mut kills = 0;
    let started = Instant::now();
    while t < end {
        let next = (t + 12 * 3600).min(end);
        // Post the clock in a thread; kill the server after a random delay.
        let addr = s.addr.clone();
        let body = format!("{{\"now\":\"{}\"}}", rfc3339(next));
        let poster =
            std::thread::spawn(move || request(&addr, "POST", "/v1/clock", body.as_bytes(), None));
        let kill = kills < 30 && rng.chance(600);
        if kill {
            std::thread::sleep(Duration::from_millis(rng.below(40)));
            s.kill9();
            kills += 1;
            let _ = poster.join();
            s = Serve::start(&db, plan(), &["--dry-run", "--workers", "2"], &log);
            // The manual clock resumes at its last committed instant.
            let now = s.ok("GET", "/v1/clock", b"");
            let now = ts(now["now"].as_str().expect("now"));
            assert!(
                now == t || now == next,
                "the clock came back at {now}, not {t} or {next}"
            );
            continue; // post the same instant again
        }
        let (status, text) = poster.join().expect("poster").expect("clock request");
        assert_eq!(status, 200, "{text}");
        t = next;
        assert!(
            started.elapsed() < Duration::from_secs(900),
            "the test runs too long"
        );
    }
    assert!(kills >= 20, "only {kills} kills");
    assert_same(&expected, s.outbox(), "after kill -9");
}

/// Three processes on one database share the work and give one ledger.
#[test]
fn several_processes_give_the_ledger_of_one() {
    let Some(pg) = postgres() else { return };
    let dir = tmp("multi");
    let (contacts, events) = base(&dir, 800, 8_000, 11);
    let until = rfc3339(ts(FROM) + 30 * DAY);
    let expected = simulate(plan(), &contacts, &events, &until);
    let db = fresh_db(&pg, "multi");
    let servers: Vec<Serve> = (0..3)
        .map(|i| {
            Serve::start(
                &db,
                plan(),
                &["--dry-run"],
                &dir.join(format!("serve{i}.log")),
            )
        })
        .collect();
    post_lines(&servers[0], "/v1/contacts", &contacts, 500);
    post_lines(&servers[1], "/v1/events", &events, 1000);
    let (mut t, end) = (ts(FROM), ts(&until));
    let mut k = 0;
    while t < end {
        t = (t + DAY).min(end);
        advance(&servers[k % 3], &rfc3339(t));
        k += 1;
    }
    assert_same(&expected, servers[2].outbox(), "three processes");
    // Each process stepped contacts (the work was shared).
    let mut c = postgres::Client::connect(&db, postgres::NoTls).expect("connect");
    let n: i64 = c
        .query_one("SELECT count(*) FROM relance.ledger", &[])
        .expect("count")
        .get(0);
    assert_eq!(n as usize, expected.len());
}

#[test]
fn the_api_refuses_what_it_cannot_take() {
    let Some(pg) = postgres() else { return };
    let dir = tmp("api");
    let db = fresh_db(&pg, "api");
    let token = "0123456789abcdef0123";
    std::fs::write(dir.join("token"), format!("{token}\n")).expect("token");
    let token_file = dir.join("token");
    let s = Serve::start(
        &db,
        plan(),
        &[
            "--dry-run",
            "--token-file",
            token_file.to_str().expect("path"),
            "--max-body",
            "4096",
        ],
        &dir.join("serve.log"),
    );
    let call = |m: &str, p: &str, b: &[u8], auth: Option<&str>| {
        request(&s.addr, m, p, b, auth).expect("request")
    };
    // No token, a wrong token: 401. Health needs none.
    assert_eq!(call("GET", "/v1/outbox", b"", None).0, 401);
    assert_eq!(
        call("GET", "/v1/outbox", b"", Some("wrong-token-wrong")).0,
        401
    );
    assert_eq!(call("GET", "/healthz", b"", None).0, 200);
    // Over the limit: 413.
    let big = vec![b' '; 5000];
    assert_eq!(call("POST", "/v1/contacts", &big, Some(token)).0, 413);
    // Rejected lines come with their line number and reason.
    let body = br#"{"id":"a1","email":"a1@example.com","first_name":"Ana","country":"FR","customer_type":"individual","signup_at":"2025-04-20T00:56:48Z","ltv":0,"sms_opt_in":false,"interests":["gps"],"lists":["newsletter"]}
not json
{"id":"a2"}"#;
    let (st, text) = call("POST", "/v1/contacts", body, Some(token));
    assert_eq!(st, 200, "{text}");
    let v: Value = serde_json::from_str(&text).expect("json");
    let rejected = v["rejected"].as_array().expect("rejected");
    assert!(rejected.iter().any(|r| r["line"] == 2), "{v}");
    assert_eq!(v["accepted"], 1, "{v}");
    assert_eq!(v["rejected"].as_array().map(Vec::len), Some(2), "{v}");
    // Events: an unknown contact is rejected; a repeated id is a duplicate.
    let ev = br#"{"id":"e1","contact":"a1","event":"page_view","at":"2026-11-02T10:00:00Z","path":"/gps"}
{"id":"e1","contact":"a1","event":"page_view","at":"2026-11-02T10:00:00Z","path":"/gps"}
{"contact":"nobody","event":"page_view","at":"2026-11-02T10:00:00Z","path":"/gps"}"#;
    let (st, text) = call("POST", "/v1/events", ev, Some(token));
    assert_eq!(st, 200, "{text}");
    let v: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(v["accepted"], 1, "{v}");
    assert_eq!(v["duplicates"], 1, "{v}");
    assert_eq!(v["rejected"][0]["line"], 3, "{v}");
    let (st, text) = call(
        "POST",
        "/v1/events",
        &ev[..ev.iter().position(|b| *b == b'\n').unwrap_or(0)],
        Some(token),
    );
    assert_eq!(st, 200);
    assert!(text.contains("\"duplicates\": 1"), "{text}");
    // The clock moves forward only.
    let (st, _) = call(
        "POST",
        "/v1/clock",
        b"{\"now\":\"2026-11-03T00:00:00Z\"}",
        Some(token),
    );
    assert_eq!(st, 200);
    let (st, text) = call(
        "POST",
        "/v1/clock",
        b"{\"now\":\"2026-11-02T00:00:00Z\"}",
        Some(token),
    );
    assert_eq!(st, 409, "{text}");
    let (st, _) = call("POST", "/v1/clock", b"{\"now\":\"soon\"}", Some(token));
    assert_eq!(st, 400);
    // The contact's page.
    let (st, text) = call("GET", "/v1/contacts/a1", b"", Some(token));
    assert_eq!(st, 200, "{text}");
    let v: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(v["id"], "a1");
    assert_eq!(call("GET", "/v1/contacts/nobody", b"", Some(token)).0, 404);
    // Metrics in Prometheus' text format.
    let (st, text) = call("GET", "/metrics", b"", None);
    assert_eq!(st, 200);
    assert!(text.contains("relance_events_duplicate_total 2"), "{text}");
}

#[test]
fn start_up_refusals_are_clear() {
    let Some(pg) = postgres() else { return };
    let dir = tmp("refuse");
    let run = |args: &[&str]| {
        let r = Command::new(BIN)
            .arg("serve")
            .arg("--plan")
            .arg(plan())
            .args(args)
            .output()
            .expect("run");
        (
            r.status.code(),
            String::from_utf8_lossy(&r.stderr).into_owned(),
        )
    };
    // Unreachable database.
    let (code, err) = run(&[
        "--database",
        "postgres://nobody@127.0.0.1:1/x",
        "--migrate-only",
    ]);
    assert_eq!(code, Some(2));
    assert!(err.contains("cannot connect to the database"), "{err}");
    // A public address without a token.
    let db = fresh_db(&pg, "refuse");
    let (code, err) = run(&["--database", &db, "--listen", "0.0.0.0:0"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("without a token"), "{err}");
    // An invalid plan.
    std::fs::write(dir.join("bad.json"), "{\"plan_version\": 1}").expect("write");
    let r = Command::new(BIN)
        .args(["serve", "--database", &db, "--plan"])
        .arg(dir.join("bad.json"))
        .output()
        .expect("run");
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("bad.json"));
    // A schema newer than this relance.
    let (code, _) = run(&["--database", &db, "--migrate-only"]);
    assert_eq!(code, Some(0));
    let mut c = postgres::Client::connect(&db, postgres::NoTls).expect("connect");
    c.execute("INSERT INTO relance.migrations (version) VALUES (999)", &[])
        .expect("insert");
    let (code, err) = run(&["--database", &db, "--migrate-only"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("newer than this relance"), "{err}");
}

/// The same plan under another hash (re-serialised), installed half-way
/// through `POST /v1/plan`, then by SIGHUP: nothing changes but the hash
/// each line records.
#[test]
fn an_equivalent_plan_upgrade_changes_nothing() {
    let Some(pg) = postgres() else { return };
    let dir = tmp("equiv");
    let (contacts, events) = base(&dir, 300, 4_000, 5);
    let until = rfc3339(ts(FROM) + 30 * DAY);
    let expected = simulate(plan(), &contacts, &events, &until);
    let text = std::fs::read_to_string(plan()).expect("plan");
    let v: Value = serde_json::from_str(&text).expect("json");
    let compact = serde_json::to_string(&v).expect("json");
    let pretty = serde_json::to_string_pretty(&v).expect("json") + "\n\n";
    assert_ne!(compact, text);
    let plan_file = dir.join("plan.json");
    std::fs::copy(plan(), &plan_file).expect("copy");
    let db = fresh_db(&pg, "equiv");
    let s = Serve::start(&db, &plan_file, &["--dry-run"], &dir.join("serve.log"));
    post_lines(&s, "/v1/contacts", &contacts, 1000);
    post_lines(&s, "/v1/events", &events, 1000);
    let (from, end) = (ts(FROM), ts(&until));
    advance(&s, &rfc3339(from + 10 * DAY + 3600));
    let v = s.ok("POST", "/v1/plan", compact.as_bytes());
    assert_eq!(v["changed"], true, "{v}");
    let second = v["plan"].as_str().expect("hash").to_string();
    advance(&s, &rfc3339(from + 20 * DAY + 7200));
    std::fs::write(&plan_file, &pretty).expect("write");
    let pid = s.child.id().to_string();
    let st = Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .expect("kill");
    assert!(st.success());
    // The reload is done when the health check shows the new hash.
    let deadline = Instant::now() + Duration::from_secs(30);
    let third = loop {
        let h = s.ok("GET", "/healthz", b"");
        let p = h["plan"].as_str().unwrap_or("").to_string();
        if p != second {
            break p;
        }
        assert!(Instant::now() < deadline, "SIGHUP did not reload the plan");
        std::thread::sleep(Duration::from_millis(50));
    };
    advance(&s, &rfc3339(end));
    let ledger = s.outbox();
    let hashes: std::collections::BTreeSet<&str> =
        ledger.iter().filter_map(|l| l["plan"].as_str()).collect();
    assert!(
        hashes.contains(second.as_str()) && hashes.contains(third.as_str()),
        "{hashes:?}"
    );
    assert_same(&expected, ledger, "across two upgrades");
}

/// Removing the last steps of a series: the run waiting at a removed step
/// ends (`plan_changed`, listed and counted), the others go on.
#[test]
fn a_removed_step_ends_the_runs_waiting_there() {
    let Some(pg) = postgres() else { return };
    let dir = tmp("removed");
    let project = autoresponder(&dir);
    let build = |out: &str| build_plan(&project, &dir.join(out));
    let v1 = build("b1");
    let series = project.join("welcome_series.camp");
    let text = std::fs::read_to_string(&series).expect("read");
    let cut = text
        .replace("  wait 4d\n", "")
        .replace("  send first_order    // day 9\n", "");
    assert_ne!(cut, text);
    std::fs::write(&series, cut).expect("write");
    let v2 = build("b2");
    let db = fresh_db(&pg, "removed");
    let s = Serve::start(&db, &v1, &["--dry-run"], &dir.join("serve.log"));
    let contacts = (1..=3)
        .map(|i| format!("{{\"id\":\"c{i}\",\"email\":\"c{i}@example.com\",\"signup_at\":\"2026-10-01T00:00:00Z\"}}"))
        .collect::<Vec<_>>()
        .join("\n");
    s.ok("POST", "/v1/contacts", contacts.as_bytes());
    let day = |d: i64| rfc3339(ts(FROM) + d * DAY + 9 * 3600);
    let events = [(1, 0), (2, 3), (3, 8)]
        .iter()
        .map(|(c, d)| format!("{{\"contact\":\"c{c}\",\"event\":\"joined\",\"list\":\"newsletter\",\"at\":\"{}\"}}", day(*d)))
        .collect::<Vec<_>>()
        .join("\n");
    let v = s.ok("POST", "/v1/events", events.as_bytes());
    assert_eq!(v["accepted"], 3, "{v}");
    advance(&s, &rfc3339(ts(FROM) + 7 * DAY));
    let c1 = s.ok("GET", "/v1/contacts/c1", b"");
    assert_eq!(c1["runs"][0]["waits_at"], "welcome_series/5", "{c1}");
    let plan2 = std::fs::read(&v2).expect("plan");
    s.ok("POST", "/v1/plan", &plan2);
    advance(&s, &rfc3339(ts(FROM) + 30 * DAY));
    let c1 = s.ok("GET", "/v1/contacts/c1", b"");
    assert_eq!(
        c1["ended_by_plan_change"],
        serde_json::json!([{"scenario": "welcome_series", "step": "welcome_series/5", "reason": "plan_changed"}]),
        "{c1}"
    );
    let sent: Vec<(String, String)> = s
        .outbox()
        .iter()
        .map(|l| {
            (
                l["contact"].as_str().unwrap_or("").to_string(),
                l["template"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let of = |c: &str| -> Vec<&str> {
        sent.iter()
            .filter(|(x, _)| x == c)
            .map(|(_, t)| t.as_str())
            .collect()
    };
    assert_eq!(of("c1"), ["welcome", "fitting_guide", "best_sellers"]);
    assert_eq!(of("c2"), ["welcome", "fitting_guide", "best_sellers"]);
    assert_eq!(of("c3"), ["welcome", "fitting_guide", "best_sellers"]);
    let (_, metrics) = s.request("GET", "/metrics", b"");
    assert!(
        metrics.contains("relance_runs_ended_plan_changed_total 1"),
        "{metrics}"
    );
}

/// A cluster of the test's own (`.ci/postgres DIR`), so that it can be
/// restarted without touching the other tests' database.
struct OwnCluster(PathBuf);

impl OwnCluster {
    fn start(dir: &Path) -> (OwnCluster, String) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/postgres");
        let out = Command::new(&script)
            .arg(dir)
            .output()
            .expect("run .ci/postgres");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let url = String::from_utf8(out.stdout)
            .expect("utf8")
            .trim()
            .to_string();
        (OwnCluster(dir.to_path_buf()), url)
    }

    fn stop(&self) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/postgres");
        let st = Command::new(&script)
            .arg("--stop")
            .arg(&self.0)
            .status()
            .expect("stop");
        assert!(st.success());
    }

    fn again(&self) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/postgres");
        let st = Command::new(&script)
            .arg(&self.0)
            .stdout(Stdio::null())
            .status()
            .expect("start");
        assert!(st.success());
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/postgres");
        let _ = Command::new(&script).arg("--stop").arg(&self.0).output();
    }
}

/// PostgreSQL stopped in the middle: calls fail with 503 and the server
/// stays up; once it is back the server reconnects and goes on.
#[test]
fn a_postgres_restart_costs_requests_not_the_server() {
    let Some(_) = postgres() else { return };
    let dir = tmp("pgrestart");
    let (cluster, base_url) = OwnCluster::start(&dir.join("pg"));
    let db = fresh_db(&base_url, "pgrestart");
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("campaigns/data");
    let (contacts, events) = (data.join("contacts.jsonl"), data.join("events.jsonl"));
    let expected = simulate(plan(), &contacts, &events, UNTIL);
    let s = Serve::start(&db, plan(), &["--dry-run"], &dir.join("serve.log"));
    post_lines(&s, "/v1/contacts", &contacts, 1000);
    post_lines(&s, "/v1/events", &events, 1000);
    advance(&s, "2026-11-15T00:00:00Z");
    cluster.stop();
    let (st, _) = s.request("POST", "/v1/clock", b"{\"now\":\"2026-11-20T00:00:00Z\"}");
    assert_eq!(st, 503);
    let (st, _) = s.request("GET", "/healthz", b"");
    assert_eq!(st, 503);
    cluster.again();
    let deadline = Instant::now() + Duration::from_secs(60);
    while s.request("GET", "/healthz", b"").0 != 200 {
        assert!(Instant::now() < deadline, "serve did not reconnect");
        std::thread::sleep(Duration::from_millis(100));
    }
    advance(&s, UNTIL);
    assert_same(&expected, s.outbox(), "across a PostgreSQL restart");
}

/// SIGTERM in the middle of a clock advance: the process exits 0 with
/// nothing half-done, and its restart finishes the job.
#[test]
fn sigterm_stops_cleanly_and_a_restart_resumes() {
    let Some(pg) = postgres() else { return };
    let dir = tmp("sigterm");
    let (contacts, events) = base(&dir, 1_000, 10_000, 3);
    let until = rfc3339(ts(FROM) + 30 * DAY);
    let expected = simulate(plan(), &contacts, &events, &until);
    let db = fresh_db(&pg, "sigterm");
    let log = dir.join("serve.log");
    let mut s = Serve::start(&db, plan(), &["--dry-run"], &log);
    post_lines(&s, "/v1/contacts", &contacts, 1000);
    post_lines(&s, "/v1/events", &events, 1000);
    let addr = s.addr.clone();
    let body = format!("{{\"now\":\"{until}\"}}");
    let poster =
        std::thread::spawn(move || request(&addr, "POST", "/v1/clock", body.as_bytes(), None));
    std::thread::sleep(Duration::from_millis(30));
    let pid = s.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(st) = s.child.try_wait().expect("wait") {
            break st;
        }
        assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "exit status {status:?}");
    let _ = poster.join();
    assert!(
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("stopped")
    );
    s = Serve::start(&db, plan(), &["--dry-run"], &log);
    advance(&s, &until);
    assert_same(&expected, s.outbox(), "after SIGTERM");
}

// ---------------------------------------------------------------- delivery

/// Waits until no ledger line is `pending` (or `pred` holds); the lines.
fn wait_ledger(s: &Serve, what: &str, pred: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let lines = s.outbox();
        if pred(&lines) {
            return lines;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: the ledger never got there:\n{}",
            lines
                .iter()
                .filter(|l| l["status"] != "sent")
                .take(5)
                .map(Value::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn none_pending(lines: &[Value]) -> bool {
    !lines.is_empty() && lines.iter().all(|l| l["status"] != "pending")
}

/// The `Message-ID` header of a received message (read from its bytes).
fn received_message_id(eml: &Path) -> String {
    let text = std::fs::read_to_string(eml).expect("the message");
    text.lines()
        .find_map(|l| l.strip_prefix("Message-ID: "))
        .unwrap_or_else(|| panic!("no Message-ID in {}", eml.display()))
        .trim()
        .to_string()
}

fn received_ids(m: &mailbox::Mailbox) -> Vec<String> {
    let mut ids: Vec<String> = (1..=m.count())
        .map(|n| received_message_id(&m.folder.join(format!("{n:04}.eml"))))
        .collect();
    ids.sort();
    ids
}

fn ledger_ids(lines: &[Value], email: bool) -> Vec<String> {
    let mut ids: Vec<String> = lines
        .iter()
        .filter(|l| (l["channel"] == "email") == email)
        .map(|l| l["message_id"].as_str().expect("a message_id").to_string())
        .collect();
    ids.sort();
    ids
}

#[test]
fn real_sends_reach_smtp_and_http_receivers_and_links_unsubscribe() {
    let Some(pg) = postgres() else { return };
    let Some(py) = mailbox::python("aiosmtpd") else {
        return;
    };
    let Some(hooks) = receiver::Receiver::start(&[]) else {
        return;
    };
    let mb = mailbox::Mailbox::start(&py, "serve-sends");
    let dir = tmp("sends");
    let db = fresh_db(&pg, "sends");
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("campaigns/data");
    let (contacts, events) = (data.join("contacts.jsonl"), data.join("events.jsonl"));
    let expected = simulate(plan(), &contacts, &events, UNTIL);
    let s = Serve::start(
        &db,
        plan(),
        &[
            "--smtp",
            &mb.url(),
            "--public-url",
            "https://relance.example",
            "--sms-url",
            &hooks.url("/sms"),
            "--push-url",
            &hooks.url("/push"),
            "--task-url",
            &hooks.url("/task"),
            "--webhook-base",
            &hooks.url(""),
        ],
        &dir.join("serve.log"),
    );
    post_lines(&s, "/v1/contacts", &contacts, 1000);
    post_lines(&s, "/v1/events", &events, 100);
    advance(&s, UNTIL);
    let lines = wait_ledger(&s, "delivery", none_pending);
    // Delivery changes statuses, never the ledger itself.
    assert_same(&expected, lines.clone(), "delivered");
    // Sent, except marketing made for a contact who unsubscribed before
    // the sender got to it (the whole window was fed at once): consent
    // withdrawn is never overridden (docs/serve.md, "Delivery").
    let (sent, failed): (Vec<Value>, Vec<Value>) =
        lines.iter().cloned().partition(|l| l["status"] == "sent");
    for l in &failed {
        assert_eq!(
            l["error"], "unsubscribed: the contact unsubscribed before delivery",
            "{l}"
        );
        assert_eq!(l["attempts"], 0, "{l}");
    }
    assert!(sent.len() > 100, "{} sent", sent.len());
    let lines = sent;
    let channels: std::collections::BTreeSet<&str> =
        lines.iter().filter_map(|l| l["channel"].as_str()).collect();
    // (Push is not in this window's ledger: tests/deliver_http.rs sends one.)
    for ch in ["email", "sms", "task", "webhook"] {
        assert!(channels.contains(ch), "no {ch} line: {channels:?}");
    }
    // Every email arrived once, with the Message-ID the ledger shows.
    assert_eq!(received_ids(&mb), ledger_ids(&lines, true));
    // Every other message arrived once, its Idempotency-Key the ledger's.
    let requests = hooks.requests();
    let mut keys: Vec<String> = requests
        .iter()
        .map(|r| {
            r["headers"]["idempotency-key"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    keys.sort();
    assert_eq!(keys, ledger_ids(&lines, false));
    for r in &requests {
        let sig = r["headers"]["x-relance-signature"].as_str().unwrap_or("");
        assert!(sig.starts_with("t=") && sig.contains(",v1="), "{r}");
    }
    // A marketing email, read by Python's MIME parser: both parts, and
    // the one-click unsubscribe pointing at --public-url.
    let n = (1..=mb.count())
        .find(|n| {
            let (_, parsed) = mb.received(*n);
            parsed["headers"]["List-Unsubscribe"][0].is_string()
        })
        .expect("a marketing email");
    let (envelope, parsed) = mb.received(n);
    assert_eq!(parsed["defects"], serde_json::json!([]));
    assert_eq!(parsed["content_type"], "multipart/alternative");
    assert_eq!(
        parsed["headers"]["List-Unsubscribe-Post"][0],
        "List-Unsubscribe=One-Click"
    );
    let link = parsed["headers"]["List-Unsubscribe"][0].as_str().unwrap();
    let token = link
        .strip_prefix("<https://relance.example/u/")
        .and_then(|t| t.strip_suffix('>'))
        .unwrap_or_else(|| panic!("List-Unsubscribe {link}"));
    let html = parsed["parts"][1]["text"].as_str().unwrap();
    assert!(
        html.contains(&format!("https://relance.example/u/{token}")),
        "{html}"
    );
    let to = envelope["rcpt_tos"][0].as_str().unwrap().to_string();
    let contact = lines
        .iter()
        .find(|l| l["channel"] == "email" && l["message_id"] == parsed["headers"]["Message-ID"][0])
        .and_then(|l| l["contact"].as_str())
        .expect("the ledger line of the message")
        .to_string();
    // The link needs no bearer token; a forged or altered one gets 403.
    let page =
        |m: &str, t: &str| request(&s.addr, m, &format!("/u/{t}"), b"", None).expect("request");
    let (st, body) = page("GET", token);
    assert_eq!(st, 200, "{body}");
    assert!(
        body.contains("<form") && body.contains("method=\"post\""),
        "{body}"
    );
    let mut altered = token.to_string();
    let last = altered.pop().unwrap();
    altered.push(if last == 'A' { 'B' } else { 'A' });
    assert_eq!(page("GET", &altered).0, 403);
    assert_eq!(page("POST", &altered).0, 403);
    assert_eq!(page("POST", "not-a-token").0, 403);
    // One-click (RFC 8058): recorded as an `unsubscribed` event.
    let (st, body) = request(
        &s.addr,
        "POST",
        &format!("/u/{token}"),
        b"List-Unsubscribe=One-Click",
        None,
    )
    .expect("request");
    assert_eq!(st, 200, "{body}");
    let mut c = postgres::Client::connect(&db, postgres::NoTls).expect("connect");
    let got: Vec<String> = c
        .query(
            "SELECT event FROM relance.inbox WHERE contact = $1",
            &[&contact],
        )
        .expect("query")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        got.iter()
            .any(|e| e.contains("\"unsubscribed\"") && e.contains("\"email\"")),
        "{contact} ({to}): {got:?}"
    );
    let metrics = request(&s.addr, "GET", "/metrics", b"", None)
        .expect("metrics")
        .1;
    assert!(
        metrics.contains("relance_unsubscribes_total 1"),
        "{metrics}"
    );
}

#[test]
fn smtp_down_keeps_emails_pending_until_it_is_back() {
    let Some(pg) = postgres() else { return };
    let Some(py) = mailbox::python("aiosmtpd") else {
        return;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let dir = tmp("smtp-down");
    let db = fresh_db(&pg, "smtp_down");
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("campaigns/data");
    let s = Serve::start(
        &db,
        plan(),
        &[
            "--smtp",
            &format!("smtp://127.0.0.1:{port}"),
            "--retry-first",
            "2",
        ],
        &dir.join("serve.log"),
    );
    post_lines(&s, "/v1/contacts", &data.join("contacts.jsonl"), 1000);
    post_lines(&s, "/v1/events", &data.join("events.jsonl"), 100);
    advance(&s, UNTIL);
    let emails = |lines: &[Value]| -> Vec<Value> {
        lines
            .iter()
            .filter(|l| l["channel"] == "email")
            .cloned()
            .collect()
    };
    let deliverable = |l: &Value| {
        l["channel"] == "email"
            && l["error"] != "unsubscribed: the contact unsubscribed before delivery"
    };
    // Nobody answers: every email stays pending once tried, with why.
    let lines = wait_ledger(&s, "SMTP down", |lines| {
        let e = emails(lines);
        !e.is_empty()
            && e.iter()
                .all(|l| l["attempts"].as_i64() >= Some(1) || !deliverable(l))
    });
    let pending: Vec<Value> = emails(&lines)
        .into_iter()
        .filter(|l| deliverable(l))
        .collect();
    assert!(pending.len() > 50, "{} emails", pending.len());
    for l in &pending {
        assert_eq!(l["status"], "pending", "{l}");
        let error = l["error"].as_str().unwrap_or("");
        assert!(error.contains("onnection"), "{l}");
    }
    // The server is back on its port: every email goes out, once.
    let mb = mailbox::Mailbox::start_on(&py, "serve-back", Some(port));
    let lines = wait_ledger(&s, "SMTP back", |lines| {
        emails(lines)
            .iter()
            .all(|l| l["status"] == "sent" || !deliverable(l))
    });
    std::thread::sleep(Duration::from_millis(500));
    let sent: Vec<Value> = emails(&lines)
        .into_iter()
        .filter(|l| deliverable(l))
        .collect();
    assert_eq!(sent.len(), pending.len());
    assert_eq!(received_ids(&mb), ledger_ids(&sent, true));
}

#[test]
fn kill_9_while_sending_loses_nothing_and_bounds_duplicates() {
    let Some(pg) = postgres() else { return };
    let Some(py) = mailbox::python("aiosmtpd") else {
        return;
    };
    let mb = mailbox::Mailbox::start(&py, "serve-kill-send");
    let dir = tmp("kill-send");
    let db = fresh_db(&pg, "kill_send");
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("campaigns/data");
    let args = ["--smtp", &mb.url(), "--senders", "2"];
    let log = dir.join("serve.log");
    {
        let s = Serve::start(&db, plan(), &args, &log);
        post_lines(&s, "/v1/contacts", &data.join("contacts.jsonl"), 1000);
        post_lines(&s, "/v1/events", &data.join("events.jsonl"), 100);
        advance(&s, UNTIL);
    }
    // The first process died (dropped) mid-delivery; kill the next ones
    // after a few tens of milliseconds of sending each.
    let kills = 6;
    for k in 0..kills {
        let mut s = Serve::start(&db, plan(), &args, &log);
        std::thread::sleep(Duration::from_millis(40 + 37 * k));
        s.kill9();
    }
    let s = Serve::start(&db, plan(), &args, &log);
    let lines = wait_ledger(&s, "after the kills", |lines| {
        lines
            .iter()
            .filter(|l| l["channel"] == "email")
            .all(|l| l["status"] != "pending")
    });
    std::thread::sleep(Duration::from_millis(500));
    let sent: Vec<Value> = lines
        .iter()
        .filter(|l| l["channel"] == "email" && l["status"] == "sent")
        .cloned()
        .collect();
    let mut received = received_ids(&mb);
    let total = received.len();
    received.dedup();
    // Every sent line arrived; nothing arrived that is not a sent line.
    assert_eq!(received, ledger_ids(&sent, true));
    // A duplicate only for a message in flight when its process died: at
    // most one per sender thread per kill (the first process included).
    let duplicates = total - received.len();
    assert!(
        duplicates <= 2 * (kills as usize + 1),
        "{duplicates} duplicates"
    );
}

/// With the system clock: an SMTP outage holds a contact's first email,
/// and the next one, made a minute later, still goes out at least a minute
/// after it (the ledger's spacing, so the pressure policy's too).
#[test]
fn after_an_outage_a_contacts_emails_keep_their_spacing() {
    let Some(pg) = postgres() else { return };
    let Some(py) = mailbox::python("aiosmtpd") else {
        return;
    };
    let dir = tmp("spacing");
    let project = autoresponder(&dir);
    let series = project.join("welcome_series.camp");
    let text = std::fs::read_to_string(&series).expect("read");
    std::fs::write(&series, text.replace("  wait 2d\n", "  wait 1m\n")).expect("write");
    let plan_file = build_plan(&project, &dir.join("build"));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let db = fresh_db(&pg, "spacing");
    let s = Serve::spawn(
        &db,
        &plan_file,
        &[
            "--clock",
            "system",
            "--smtp",
            &format!("smtp://127.0.0.1:{port}"),
            "--retry-first",
            "1",
        ],
        &dir.join("serve.log"),
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs() as i64;
    s.ok(
        "POST",
        "/v1/contacts",
        br#"{"id":"c1","email":"c1@example.com","signup_at":"2026-10-01T00:00:00Z"}"#,
    );
    let event = format!(
        r#"{{"contact":"c1","event":"joined","list":"newsletter","at":"{}"}}"#,
        rfc3339(now)
    );
    let v = s.ok("POST", "/v1/events", event.as_bytes());
    assert_eq!(v["accepted"], 1, "{v}");
    // The welcome is made at once and held up by the outage.
    wait_ledger(&s, "welcome tried", |lines| {
        lines
            .first()
            .is_some_and(|l| l["attempts"].as_i64() >= Some(1))
    });
    std::thread::sleep(Duration::from_secs(5));
    let mb = mailbox::Mailbox::start_on(&py, "spacing", Some(port));
    let lines = wait_ledger(&s, "both sent", |lines| {
        lines.len() == 2 && lines.iter().all(|l| l["status"] == "sent")
    });
    assert_eq!(lines[0]["template"], "welcome");
    assert_eq!(lines[1]["template"], "fitting_guide");
    assert_eq!(mb.count(), 2);
    let mut c = postgres::Client::connect(&db, postgres::NoTls).expect("connect");
    let rows = c
        .query(
            "SELECT at, sent_at FROM relance.ledger WHERE contact = 'c1' ORDER BY at",
            &[],
        )
        .expect("query");
    let (a_at, a_sent): (i64, i64) = (rows[0].get(0), rows[0].get::<_, Option<i64>>(1).unwrap());
    let (b_at, b_sent): (i64, i64) = (rows[1].get(0), rows[1].get::<_, Option<i64>>(1).unwrap());
    assert_eq!(b_at - a_at, 60, "the ledger's spacing");
    assert!(
        a_sent >= a_at + 5,
        "the welcome was held up: {a_at} {a_sent}"
    );
    assert!(
        b_sent - a_sent >= 60,
        "sent {} s apart, made 60 s apart",
        b_sent - a_sent
    );
}
