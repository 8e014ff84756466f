//! `cargo bench --bench run`: the runner's performance target, `relance run`
//! on `campaigns/` with 1M contacts and 10M events over 30 days, whole run
//! under 60 s and under 2 GiB of peak memory on the 2-core bench machine.
//!
//! 1. Generates the base with `benches/synth/runbase.rs` (the generator of
//!    `examples/runbase.rs`), or reuses the one cached in
//!    `target/runbase-<contacts>-<events>-<seed>/` when its `README.txt`
//!    names the same parameters.
//! 2. `relance build campaigns --out <work>/build --now <from>`.
//! 3. `relance run --plan … --contacts … --events … --from … --until …
//!    --out <work>/outbox.jsonl --summary <work>/summary.json --timings`,
//!    timed (wall and CPU), its peak RSS taken from `getrusage` of the
//!    waited-for children, and from the `peak-rss` of `--timings` when the
//!    runner prints one.
//! 4. Prints contacts/s, events/s and messages/s (lines of the outbox) and
//!    a PASS/FAIL table. Nothing asserts on time; a failed command exits 1.
//!
//! The binary is the one Cargo builds for benches (`CARGO_BIN_EXE_relance`,
//! release settings); `RELANCE_BIN=/path/to/relance` runs another one.
//! Sizes: `RELANCE_BENCH_CONTACTS`, `RELANCE_BENCH_EVENTS`,
//! `RELANCE_BENCH_DAYS`, `RELANCE_BENCH_SEED` (a smoke run:
//! `RELANCE_BENCH_CONTACTS=10000 RELANCE_BENCH_EVENTS=100000`). The run's
//! files stay in `<base>/run/` for inspection; see `docs/performance.md`.

#[path = "synth/runbase.rs"]
mod runbase;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

const MB: f64 = 1_000_000.0;
const GIB: u64 = 1 << 30;
const TARGET_WALL: Duration = Duration::from_secs(60);

/// Peak RSS (bytes) of the largest child waited for so far, and the total
/// CPU time of waited-for children (the same FFI as `benches/check.rs`).
#[cfg(target_os = "linux")]
fn children_usage() -> Option<(u64, Duration)> {
    #[repr(C)]
    struct Timeval {
        sec: i64,
        usec: i64,
    }
    #[repr(C)]
    struct Rusage {
        utime: Timeval,
        stime: Timeval,
        maxrss: i64,
        rest: [i64; 13],
    }
    unsafe extern "C" {
        fn getrusage(who: i32, usage: *mut Rusage) -> i32;
    }
    const RUSAGE_CHILDREN: i32 = -1;
    let mut u = Rusage {
        utime: Timeval { sec: 0, usec: 0 },
        stime: Timeval { sec: 0, usec: 0 },
        maxrss: 0,
        rest: [0; 13],
    };
    // SAFETY: `u` is a properly laid out `struct rusage` for Linux on 64-bit
    // targets (two timevals, then 14 longs) that getrusage fills in.
    let rc = unsafe { getrusage(RUSAGE_CHILDREN, &mut u) };
    if rc != 0 || cfg!(not(target_pointer_width = "64")) {
        return None;
    }
    let cpu = |t: &Timeval| Duration::new(t.sec as u64, (t.usec * 1000) as u32);
    Some((u.maxrss as u64 * 1024, cpu(&u.utime) + cpu(&u.stime)))
}

#[cfg(not(target_os = "linux"))]
fn children_usage() -> Option<(u64, Duration)> {
    None
}

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v.replace('_', "").parse().unwrap_or_else(|_| {
            eprintln!("error: {name}={v} is not a whole number");
            std::process::exit(2);
        }),
        Err(_) => default,
    }
}

/// `target/` (or `CARGO_TARGET_DIR`): this bench runs from
/// `<target>/release/deps/run-<hash>`.
fn target_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.to_path_buf()))
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "n/a".into())
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn per_second(n: u64, d: Duration) -> String {
    thousands((n as f64 / d.as_secs_f64().max(1e-9)).round() as u64)
}

fn verdict(ok: bool) -> &'static str {
    if ok { "PASS" } else { "FAIL" }
}

/// Lines of a file, read in chunks (the outbox can be large).
fn count_lines(path: &Path) -> std::io::Result<u64> {
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0;
    loop {
        let k = f.read(&mut buf)?;
        if k == 0 {
            return Ok(n);
        }
        n += buf[..k].iter().filter(|&&b| b == b'\n').count() as u64;
    }
}

/// The `peak-rss N MB` (or `GB`/`KB`) figure of a `timings:` line, in bytes.
fn timings_peak_rss(stderr: &str) -> Option<u64> {
    let line = stderr.lines().rev().find(|l| l.contains("timings:"))?;
    let rest = &line[line.find("peak-rss")? + "peak-rss".len()..];
    let mut words = rest
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty());
    let number: f64 = words.next()?.parse().ok()?;
    let unit = match words.next().unwrap_or("MB") {
        "KB" | "kB" => 1e3,
        "KiB" => 1024.0,
        "MB" => 1e6,
        "MiB" => 1024.0 * 1024.0,
        "GB" => 1e9,
        "GiB" => GIB as f64,
        _ => return None,
    };
    Some((number * unit) as u64)
}

/// Runs `cmd`, keeping its stderr; exits 1 with a clear message on failure.
fn run_step(what: &str, cmd: &mut Command) -> (Duration, String) {
    let shown = format!("{cmd:?}");
    let start = Instant::now();
    let output = cmd.stdin(Stdio::null()).stdout(Stdio::null()).output();
    let wall = start.elapsed();
    let output = match output {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: cannot start {what}: {e}\n  command: {shown}");
            std::process::exit(1);
        }
    };
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    if !output.status.success() {
        eprintln!(
            "error: {what} failed ({}) after {:.1} s",
            output.status,
            wall.as_secs_f64()
        );
        eprintln!("  command: {shown}");
        let tail: Vec<&str> = stderr.lines().rev().take(30).collect();
        for line in tail.iter().rev() {
            eprintln!("  | {line}");
        }
        if what.contains("run")
            && (stderr.contains("unrecognized subcommand")
                || stderr.contains("unexpected argument"))
        {
            eprintln!(
                "  (this relance has no `run` command yet: build a branch with the runner, \
                 or point RELANCE_BIN at one)"
            );
        }
        std::process::exit(1);
    }
    (wall, stderr)
}

fn main() -> ExitCode {
    let defaults = runbase::Config::default();
    let cfg = runbase::Config {
        contacts: env_number("RELANCE_BENCH_CONTACTS", defaults.contacts),
        events: env_number("RELANCE_BENCH_EVENTS", defaults.events),
        days: env_number("RELANCE_BENCH_DAYS", u64::from(defaults.days)).clamp(1, 3650) as u32,
        seed: env_number("RELANCE_BENCH_SEED", defaults.seed),
        ..defaults
    };
    let exe: PathBuf = std::env::var_os("RELANCE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_relance")));
    let from = runbase::format_timestamp(cfg.from);
    let until = runbase::format_timestamp(cfg.until());
    println!("relance runner benchmark (benches/run.rs)");
    println!(
        "machine: {} logical CPU(s); load average at start: {}",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        loadavg()
    );
    println!("binary: {}", exe.display());

    // ------------------------------------------------------------ the base
    let base = target_dir().join(format!(
        "runbase-{}-{}-{}",
        cfg.contacts, cfg.events, cfg.seed
    ));
    let readme = std::fs::read_to_string(base.join("README.txt")).unwrap_or_default();
    if readme.lines().next() == Some(cfg.params_line().as_str()) {
        println!("base: reusing {}", base.display());
    } else {
        println!(
            "base: generating {} ({})",
            base.display(),
            cfg.params_line()
        );
        let start = Instant::now();
        if let Err(e) = runbase::write_dir(&cfg, &base) {
            eprintln!("error: cannot write the base to {}: {e}", base.display());
            return ExitCode::from(1);
        }
        println!("  generated in {:.1} s", start.elapsed().as_secs_f64());
    }
    let size = |f: &str| std::fs::metadata(base.join(f)).map_or(0, |m| m.len());
    println!(
        "  contacts.jsonl {:.1} MB, events.jsonl {:.1} MB; window {from} .. {until}",
        size("contacts.jsonl") as f64 / MB,
        size("events.jsonl") as f64 / MB
    );

    // ------------------------------------------------------------ build
    let work = base.join("run");
    let _ = std::fs::remove_dir_all(&work);
    if let Err(e) = std::fs::create_dir_all(&work) {
        eprintln!("error: cannot create {}: {e}", work.display());
        return ExitCode::from(1);
    }
    let campaigns = Path::new(env!("CARGO_MANIFEST_DIR")).join("campaigns");
    let build = work.join("build");
    let (build_wall, _) = run_step(
        "relance build",
        Command::new(&exe)
            .args(["build", "--color", "never", "--now", &from, "--out"])
            .arg(&build)
            .arg(&campaigns),
    );
    let after_build = children_usage();
    println!("build: {:.2} s", build_wall.as_secs_f64());

    // ------------------------------------------------------------ run
    let outbox = work.join("outbox.jsonl");
    let summary = work.join("summary.json");
    println!("run: relance run … --timings (this is the measured part)");
    let (wall, stderr) = run_step(
        "relance run",
        Command::new(&exe)
            .arg("run")
            .arg("--plan")
            .arg(build.join("plan.json"))
            .arg("--contacts")
            .arg(base.join("contacts.jsonl"))
            .arg("--events")
            .arg(base.join("events.jsonl"))
            .args(["--from", &from, "--until", &until, "--out"])
            .arg(&outbox)
            .arg("--summary")
            .arg(&summary)
            .arg("--timings"),
    );
    let after_run = children_usage();
    let _ = std::fs::write(work.join("stderr.txt"), &stderr);
    for line in stderr.lines().filter(|l| l.contains("timings:")) {
        println!("  {line}");
    }
    let messages = match count_lines(&outbox) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("error: cannot read the outbox {}: {e}", outbox.display());
            return ExitCode::from(1);
        }
    };

    // getrusage(CHILDREN) keeps the largest child's peak: the run's when it
    // is above the build's.
    let rusage_peak = match (after_build, after_run) {
        (Some((b, _)), Some((r, _))) if r > b => Some(r),
        _ => None,
    };
    let cpu = match (after_build, after_run) {
        (Some((_, b)), Some((_, r))) => Some(r - b),
        _ => None,
    };
    let timings_peak = timings_peak_rss(&stderr);
    let peak = rusage_peak.or(timings_peak);

    println!();
    println!(
        "contacts {}, events {} (plus {} history), messages {} (outbox lines)",
        thousands(cfg.contacts),
        thousands(cfg.events),
        thousands(cfg.history_events()),
        thousands(messages)
    );
    println!(
        "wall {:.2} s{}; contacts/s {}, events/s {}, messages/s {}",
        wall.as_secs_f64(),
        cpu.map_or(String::new(), |c| format!(
            " (CPU user+sys {:.2} s)",
            c.as_secs_f64()
        )),
        per_second(cfg.contacts, wall),
        per_second(cfg.events, wall),
        per_second(messages, wall)
    );
    let show = |b: Option<u64>| b.map_or("n/a".to_string(), |b| format!("{:.1} MB", b as f64 / MB));
    let rusage_text = match (rusage_peak, after_build) {
        (Some(_), _) => show(rusage_peak),
        (None, Some((b, _))) => format!("<= {} (not above the build's)", show(Some(b))),
        (None, None) => "n/a".to_string(),
    };
    println!(
        "peak RSS: {rusage_text} (getrusage), {} (--timings)",
        show(timings_peak)
    );
    let full = cfg.contacts >= 1_000_000 && cfg.events >= 10_000_000;
    println!();
    println!(
        "{:<44} {:>14} {:>10}  result",
        "figure", "measured", "target"
    );
    println!(
        "{:<44} {:>14} {:>10}  {}",
        "`relance run` wall time",
        format!("{:.2} s", wall.as_secs_f64()),
        "< 60 s",
        verdict(wall < TARGET_WALL)
    );
    println!(
        "{:<44} {:>14} {:>10}  {}",
        "`relance run` peak RSS",
        show(peak),
        "< 2 GiB",
        peak.map_or("N/A", |p| verdict(p < 2 * GIB))
    );
    if !full {
        println!("(a smaller base than the target's 1M contacts / 10M events: PASS means little)");
    }
    println!(
        "files kept in {} (outbox.jsonl, summary.json, stderr.txt); load average at end: {}",
        work.display(),
        loadavg()
    );
    ExitCode::SUCCESS
}
