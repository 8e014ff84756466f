//! `cargo bench --bench serve`: the targets of `relance serve` (issue 11),
//! on a PostgreSQL of its own on this machine, with durable commits
//! (`fsync` and synchronous commit on: `.ci/postgres` with
//! `RELANCE_PG_DURABLE=1`).
//!
//! 1. **Ingest and backfill** (`campaigns/`, manual clock, `--dry-run`):
//!    100,000 contacts and 1,000,000 events over 30 days from the runner
//!    benchmark's generator, posted 1,000 events per request (events/s,
//!    target ≥ 20,000), then the clock advanced day by day to the end
//!    (wall time), against `relance run` on the same files (the ratio),
//!    and the ledger compared with the outbox line by line.
//! 2. **Timers** (system clock): 1,000,000 contacts, each with a trigger
//!    `at remind_at`, spread over the next 24 hours; once every contact
//!    started, the lag from each wake-up's instant to the commit of its
//!    ledger line, over the wake-ups of the next 60 s (target: p99 < 1 s);
//!    and the server's peak RSS (target < 200 MB with 1,000,000 contacts).
//!
//! Sizes: `RELANCE_BENCH_CONTACTS` / `RELANCE_BENCH_EVENTS` (part 1),
//! `RELANCE_BENCH_TIMERS` (part 2); `RELANCE_BENCH_PART=1|2` runs one part.
//! Nothing asserts on time; the figures and a PASS/FAIL table are printed.

#[path = "synth/runbase.rs"]
mod runbase;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_relance");
const DAY: i64 = 86_400;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn request(addr: &str, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect to relance serve");
    s.set_read_timeout(Some(Duration::from_secs(3600))).ok();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).expect("write");
    s.write_all(body).expect("write");
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("read");
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, rest.to_string())
}

fn ok(addr: &str, method: &str, path: &str, body: &[u8]) -> String {
    let (st, text) = request(addr, method, path, body);
    assert_eq!(st, 200, "{method} {path}: {text}");
    text
}

struct Cluster(PathBuf, String);

impl Cluster {
    fn start(dir: &Path) -> Cluster {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/postgres");
        let out = Command::new(&script)
            .arg(dir)
            .env("RELANCE_PG_DURABLE", "1")
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
        Cluster(dir.to_path_buf(), url)
    }

    fn db(&self, name: &str) -> String {
        let mut c = postgres::Client::connect(&self.1, postgres::NoTls).expect("connect");
        c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .expect("drop");
        c.batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create");
        let (head, _) = self.1.rsplit_once('/').expect("url");
        format!("{head}/{name}")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/postgres");
        let _ = Command::new(&script).arg("--stop").arg(&self.0).output();
    }
}

struct Serve {
    child: Child,
    addr: String,
}

impl Serve {
    fn start(args: &[&str]) -> Serve {
        let mut child = Command::new(BIN)
            .arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("start relance serve");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if !sent && let Some(i) = line.find("listening on http://") {
                    let rest = &line[i + 20..];
                    let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_string());
                    sent = true;
                } else if !line.contains("listening") {
                    eprintln!("serve: {line}");
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("serve started");
        Serve { child, addr }
    }

    fn peak_rss_mb(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|k| k.parse::<u64>().ok())
            .map_or(0, |kb| kb / 1024)
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rfc3339(t: i64) -> String {
    jiff::Timestamp::from_second(t)
        .expect("ts")
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn post_chunks(addr: &str, path: &str, text: &str, per: usize) {
    let lines: Vec<&str> = text.lines().collect();
    for chunk in lines.chunks(per) {
        ok(addr, "POST", path, chunk.join("\n").as_bytes());
    }
}

fn part1(work: &Path, cluster: &Cluster, rows: &mut Vec<(String, String, String, bool)>) {
    let cfg = runbase::Config {
        contacts: env_u64("RELANCE_BENCH_CONTACTS", 100_000),
        events: env_u64("RELANCE_BENCH_EVENTS", 1_000_000),
        days: 30,
        ..runbase::Config::default()
    };
    let mut stats = runbase::Stats::default();
    let mut c = Vec::new();
    let mut state = runbase::write_contacts(&cfg, &mut c, &mut stats).expect("contacts");
    let mut e = Vec::new();
    runbase::write_events(&cfg, &mut state, &mut e, &mut stats).expect("events");
    let (cp, ep) = (work.join("contacts.jsonl"), work.join("events.jsonl"));
    std::fs::write(&cp, &c).expect("write");
    std::fs::write(&ep, &e).expect("write");
    let campaigns = Path::new(env!("CARGO_MANIFEST_DIR")).join("campaigns");
    let build = work.join("build");
    let st = Command::new(BIN)
        .args(["build", "--out"])
        .arg(&build)
        .arg(&campaigns)
        .stderr(Stdio::null())
        .status()
        .expect("build");
    assert!(st.success());
    let plan = build.join("plan.json");
    let from = rfc3339(cfg.from);
    let until = rfc3339(cfg.until());
    // The simulation.
    let t = Instant::now();
    let out = Command::new(BIN)
        .arg("run")
        .arg("--plan")
        .arg(&plan)
        .arg("--contacts")
        .arg(&cp)
        .arg("--events")
        .arg(&ep)
        .args(["--from", &from, "--until", &until])
        .stderr(Stdio::null())
        .output()
        .expect("run");
    let run_wall = t.elapsed();
    assert!(out.status.success());
    let expected: Vec<String> = String::from_utf8(out.stdout)
        .expect("utf8")
        .lines()
        .map(String::from)
        .collect();
    // The server.
    let db = cluster.db("bench_backfill");
    let s = Serve::start(&[
        "--plan",
        plan.to_str().expect("path"),
        "--database",
        &db,
        "--clock",
        "manual",
        "--from",
        &from,
        "--dry-run",
    ]);
    let ctext = String::from_utf8(c).expect("utf8");
    let t = Instant::now();
    post_chunks(&s.addr, "/v1/contacts", &ctext, 5_000);
    let contacts_wall = t.elapsed();
    let etext = String::from_utf8(e).expect("utf8");
    let n_events = etext.lines().count();
    let t = Instant::now();
    post_chunks(&s.addr, "/v1/events", &etext, 1_000);
    let events_wall = t.elapsed();
    let rate = n_events as f64 / events_wall.as_secs_f64();
    let t = Instant::now();
    for d in 1..=30 {
        let now = rfc3339((cfg.from + d * DAY).min(cfg.until()));
        ok(
            &s.addr,
            "POST",
            "/v1/clock",
            format!("{{\"now\":\"{now}\"}}").as_bytes(),
        );
    }
    let backfill = t.elapsed();
    let ledger = ok(&s.addr, "GET", "/v1/outbox?limit=100000", b"");
    let mut got = Vec::new();
    let mut after = 0i64;
    let mut page = ledger;
    loop {
        let lines: Vec<&str> = page.lines().collect();
        if lines.is_empty() {
            break;
        }
        for l in &lines {
            let mut v: serde_json::Value = serde_json::from_str(l).expect("json");
            after = v["seq"].as_i64().expect("seq");
            for k in ["seq", "status", "message_id", "plan", "attempts"] {
                v.as_object_mut().expect("obj").remove(k);
            }
            got.push(v);
        }
        page = ok(
            &s.addr,
            "GET",
            &format!("/v1/outbox?after={after}&limit=100000"),
            b"",
        );
    }
    let same = got.len() == expected.len()
        && got
            .iter()
            .zip(&expected)
            .all(|(g, e)| *g == serde_json::from_str::<serde_json::Value>(e).expect("json"));
    let rss = s.peak_rss_mb();
    println!(
        "part 1: {} contacts, {n_events} events, 30 days; ledger {} lines, equal to relance run: {same}",
        cfg.contacts,
        got.len()
    );
    println!(
        "  contacts ingest: {:.1} s ({:.0}/s)",
        contacts_wall.as_secs_f64(),
        cfg.contacts as f64 / contacts_wall.as_secs_f64()
    );
    println!(
        "  events ingest:   {:.1} s ({rate:.0} events/s, 1,000 per request, durable commits)",
        events_wall.as_secs_f64()
    );
    println!(
        "  backfill (30 daily clock steps): {:.1} s",
        backfill.as_secs_f64()
    );
    println!(
        "  relance run on the same inputs:  {:.1} s",
        run_wall.as_secs_f64()
    );
    let total = contacts_wall + events_wall + backfill;
    println!(
        "  serve total {:.1} s = {:.1}x relance run; serve peak RSS {rss} MB",
        total.as_secs_f64(),
        total.as_secs_f64() / run_wall.as_secs_f64()
    );
    rows.push((
        "ingest events/s".into(),
        format!("{rate:.0}"),
        ">= 20000".into(),
        rate >= 20_000.0,
    ));
    rows.push((
        "ledger = relance run".into(),
        same.to_string(),
        "true".into(),
        same,
    ));
    rows.push((
        "backfill / relance run".into(),
        format!("{:.1}x", total.as_secs_f64() / run_wall.as_secs_f64()),
        "(recorded)".into(),
        true,
    ));
}

fn part2(work: &Path, cluster: &Cluster, rows: &mut Vec<(String, String, String, bool)>) {
    let n = env_u64("RELANCE_BENCH_TIMERS", 1_000_000);
    let project = work.join("timers");
    std::fs::create_dir_all(&project).expect("dir");
    std::fs::write(
        project.join("main.camp"),
        r#"workspace { name = "Bench", from = "Bench <b@bench.example>", address = "1 rue du Banc, Lyon" }
contact { email: email, remind_at: timestamp }
template reminder : email {
  kind    = transactional
  subject = "Your reminder"
  html    = "<p>It is time.</p>"
}
scenario remind {
  trigger at remind_at
  send reminder
}
"#,
    )
    .expect("write");
    let build = work.join("timers-build");
    let out = Command::new(BIN)
        .args(["build", "--out"])
        .arg(&build)
        .arg(&project)
        .output()
        .expect("build");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let db = cluster.db("bench_timers");
    let s = Serve::start(&[
        "--plan",
        build.join("plan.json").to_str().expect("path"),
        "--database",
        &db,
        "--dry-run",
        "--workers",
        "2",
    ]);
    let t0 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs() as i64;
    let t = Instant::now();
    let mut body = String::new();
    for i in 0..n {
        let at = t0 + (i as i64 * DAY) / n as i64;
        body.push_str(&format!(
            "{{\"id\":\"t{i:07}\",\"email\":\"t{i}@bench.example\",\"remind_at\":\"{}\"}}\n",
            rfc3339(at)
        ));
        if (i + 1) % 10_000 == 0 || i + 1 == n {
            ok(&s.addr, "POST", "/v1/contacts", body.as_bytes());
            body.clear();
        }
    }
    let posted = t.elapsed();
    // Every contact started: no contact due before now but the timers.
    let mut c = postgres::Client::connect(&db, postgres::NoTls).expect("connect");
    loop {
        let started: i64 = c
            .query_one(
                "SELECT count(*) FROM relance.contacts WHERE state IS NOT NULL",
                &[],
            )
            .expect("count")
            .get(0);
        if started as u64 >= n {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let ready = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs() as i64;
    let started_wall = t.elapsed();
    let pending: i64 = c
        .query_one(
            "SELECT count(*) FROM relance.contacts WHERE due IS NOT NULL",
            &[],
        )
        .expect("count")
        .get(0);
    std::thread::sleep(Duration::from_secs(65));
    let (lo, hi) = (ready + 2, ready + 62);
    let mut lags: Vec<i64> = c
        .query(
            "SELECT made_at - at * 1000 FROM relance.ledger WHERE at >= $1 AND at < $2",
            &[&lo, &hi],
        )
        .expect("lags")
        .into_iter()
        .map(|r| r.get(0))
        .collect();
    lags.sort_unstable();
    let pct = |p: f64| {
        lags.get(((lags.len() as f64 * p).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or(-1)
    };
    let (p50, p99, max) = (pct(0.5), pct(0.99), lags.last().copied().unwrap_or(-1));
    let rss = s.peak_rss_mb();
    println!(
        "part 2: {n} contacts posted in {:.1} s, all started after {:.1} s; {pending} timers pending",
        posted.as_secs_f64(),
        started_wall.as_secs_f64()
    );
    println!(
        "  {} wake-ups in 60 s: lag p50 {p50} ms, p99 {p99} ms, max {max} ms (from the wake-up's instant to the commit of its ledger line)",
        lags.len()
    );
    println!("  serve peak RSS {rss} MB");
    rows.push((
        "timer pickup p99 (ms)".into(),
        p99.to_string(),
        "< 1000".into(),
        (0..1000).contains(&p99),
    ));
    rows.push((
        "serve RSS, 1M contacts (MB)".into(),
        rss.to_string(),
        "< 200".into(),
        rss < 200,
    ));
}

fn main() -> ExitCode {
    if std::env::args().any(|a| a == "--list") {
        return ExitCode::SUCCESS;
    }
    let work = std::env::temp_dir().join(format!("relance-bench-serve-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).expect("work dir");
    let cluster = Cluster::start(&work.join("pg"));
    let part = std::env::var("RELANCE_BENCH_PART").unwrap_or_default();
    let mut rows = Vec::new();
    if part.is_empty() || part == "1" {
        part1(&work, &cluster, &mut rows);
    }
    if part.is_empty() || part == "2" {
        part2(&work, &cluster, &mut rows);
    }
    println!("\n| measure | value | target | |\n|---|---|---|---|");
    for (m, v, t, pass) in &rows {
        println!(
            "| {m} | {v} | {t} | {} |",
            if *pass { "PASS" } else { "FAIL" }
        );
    }
    drop(cluster);
    let _ = std::fs::remove_dir_all(&work);
    ExitCode::SUCCESS
}
