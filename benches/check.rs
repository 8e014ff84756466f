//! `cargo bench --bench check`: the front end's performance targets, measured
//! on a synthetic project of 1,000 files (~100k lines) and printed as a table.
//!
//! No criterion: a plain `main` (`harness = false`) with `Instant`, a
//! counting global allocator for the peak live heap, and `getrusage` for the
//! child process's peak RSS. The figures and how to read them are in
//! `docs/performance.md`. Nothing here asserts on time: a slow machine
//! prints FAIL in the table, it does not break the build.

#[path = "synth/mod.rs"]
mod synth;

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use relance::diagnostics::{FileId, Problems, Severity};

// ---------------------------------------------------------------- allocator

/// Counts live heap bytes and their high-water mark.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let now = LIVE.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: every call is forwarded to the system allocator unchanged; the
// counters are only bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                grew(new_size - layout.size());
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Starts a new high-water mark; returns the bytes live now.
fn reset_peak() -> usize {
    let live = LIVE.load(Ordering::Relaxed);
    PEAK.store(live, Ordering::Relaxed);
    live
}

// ---------------------------------------------------------------- rusage

/// Peak RSS (bytes) of the largest child waited for so far, and the total
/// CPU time of waited-for children.
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

// ---------------------------------------------------------------- pest only

/// The language's grammar compiled a second time, to time pest alone
/// (without the guard and the lowering to the AST).
mod pest_only {
    #[derive(pest_derive::Parser)]
    #[grammar = "../grammar/relance.pest"]
    pub struct Grammar;
}

fn pest_parse(text: &str) -> bool {
    use pest::Parser;
    pest_only::Grammar::parse(pest_only::Rule::file, text).is_ok()
}

// ---------------------------------------------------------------- helpers

const SEED: u64 = synth::DEFAULT_SEED;
const FILES: usize = synth::DEFAULT_FILES;
const MB: f64 = 1_000_000.0;

/// CPU time consumed by this process so far, all threads together. Around
/// single-threaded work (`threads = 1`: one parser thread while the caller
/// waits) this is the time of one core; on a shared machine, time other
/// processes take from us is not counted, as wall time would be.
#[cfg(target_os = "linux")]
fn process_cpu() -> Option<Duration> {
    #[repr(C)]
    struct Timespec {
        sec: i64,
        nsec: i64,
    }
    unsafe extern "C" {
        fn clock_gettime(clock: i32, tp: *mut Timespec) -> i32;
    }
    const CLOCK_PROCESS_CPUTIME_ID: i32 = 2;
    let mut t = Timespec { sec: 0, nsec: 0 };
    // SAFETY: `t` is a `struct timespec` on 64-bit Linux; clock_gettime
    // only writes into it.
    let rc = unsafe { clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &mut t) };
    (rc == 0 && cfg!(target_pointer_width = "64"))
        .then(|| Duration::new(t.sec as u64, t.nsec as u32))
}

#[cfg(not(target_os = "linux"))]
fn process_cpu() -> Option<Duration> {
    None
}

/// Sorted wall-clock and process-CPU durations of repeated runs.
struct Samples {
    wall: Vec<Duration>,
    cpu: Vec<Duration>,
}

impl Samples {
    fn wall(&self) -> Duration {
        median(&self.wall)
    }

    /// The process's CPU time (falls back to wall time off Linux). Only
    /// meaningful for single-threaded work.
    fn cpu(&self) -> Duration {
        if self.cpu.is_empty() {
            self.wall()
        } else {
            median(&self.cpu)
        }
    }
}

/// Runs `f` at least `min_runs` times and for at least `min_time`.
fn times_for(min_runs: usize, min_time: Duration, mut f: impl FnMut()) -> Samples {
    let start = Instant::now();
    let mut wall = Vec::new();
    let mut cpu = Vec::new();
    while wall.len() < min_runs || start.elapsed() < min_time {
        let c = process_cpu();
        let t = Instant::now();
        f();
        wall.push(t.elapsed());
        if let (Some(c0), Some(c1)) = (c, process_cpu()) {
            cpu.push(c1 - c0);
        }
    }
    wall.sort();
    cpu.sort();
    Samples { wall, cpu }
}

/// Runs `f` `n` times.
fn times(n: usize, f: impl FnMut()) -> Samples {
    times_for(n, Duration::ZERO, f)
}

fn median(v: &[Duration]) -> Duration {
    v[v.len() / 2]
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", secs(d) * 1000.0)
}

fn mbps(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / MB / secs(d)
}

fn thousands(n: usize) -> String {
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

fn verdict(ok: bool) -> &'static str {
    if ok { "PASS" } else { "FAIL" }
}

struct Row {
    figure: String,
    value: String,
    target: String,
    result: &'static str,
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// A FNV-1a hash of the generated texts, to show the output is stable.
fn fingerprint(texts: &[String]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for t in texts {
        for b in t.bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "n/a".into())
}

fn parse_one(text: &str) -> usize {
    let mut problems = Problems::new();
    let ast = relance::syntax::parse_file(FileId(0), text, &mut problems);
    ast.decls.len() + problems.iter().count()
}

fn main() {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("relance front-end benchmark (benches/check.rs)");
    println!(
        "machine: {} logical CPU(s), {}; {} {}",
        threads,
        cpu_model(),
        std::env::consts::OS,
        std::env::consts::ARCH
    );
    println!(
        "load average at start: {} (other processes skew wall times; see docs/performance.md)",
        loadavg()
    );
    let bench_start = Instant::now();

    // ------------------------------------------------------------ generate
    let t = Instant::now();
    let project = synth::generate(SEED, FILES);
    let texts: Vec<String> = project.iter().map(|f| f.camp()).collect();
    let gen_time = t.elapsed();
    let again: Vec<String> = synth::generate(SEED, FILES)
        .iter()
        .map(|f| f.camp())
        .collect();
    let deterministic = again == texts;
    drop(again);
    let bytes: usize = texts.iter().map(String::len).sum();
    let lines: usize = texts.iter().map(|t| t.lines().count()).sum();
    let mut kinds: std::collections::BTreeMap<&str, usize> = Default::default();
    for f in &project {
        for item in &f.items {
            if let synth::Item::Decl(_, d) = item {
                let k = match d {
                    synth::Decl::Workspace(_) => "workspace",
                    synth::Decl::Contact(_) => "contact",
                    synth::Decl::Event(..) => "event",
                    synth::Decl::List(..) => "list",
                    synth::Decl::Segment(..) => "segment",
                    synth::Decl::Persona { negative: true, .. } => "negative persona",
                    synth::Decl::Persona { .. } => "persona",
                    synth::Decl::Template { channel, .. } => match *channel {
                        "email" => "template:email",
                        "sms" => "template:sms",
                        "push" => "template:push",
                        "task" => "template:task",
                        _ => "template:webhook",
                    },
                    synth::Decl::Scenario { .. } => "scenario",
                    synth::Decl::Cadence { .. } => "cadence",
                    synth::Decl::Pressure { .. } => "pressure",
                    synth::Decl::Consent(..) => "consent",
                    synth::Decl::Raw(x) if x.starts_with("topic") => "topic",
                    synth::Decl::Raw(_) => "consent",
                };
                *kinds.entry(k).or_default() += 1;
            }
        }
    }
    println!();
    println!(
        "synthetic project: seed {SEED}, {} files, {} lines, {} bytes ({:.2} MB), generated in {} (deterministic: {}, fingerprint {:016x})",
        texts.len(),
        thousands(lines),
        thousands(bytes),
        bytes as f64 / MB,
        ms(gen_time),
        if deterministic { "yes" } else { "NO" },
        fingerprint(&texts)
    );
    println!(
        "  declarations: {}",
        kinds
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );

    let dir: PathBuf =
        std::env::temp_dir().join(format!("relance-bench-synth-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = synth::write_project(&dir, &project) {
        eprintln!("error: cannot write the project to {}: {e}", dir.display());
        std::process::exit(2);
    }
    println!("  written to {}", dir.display());

    let mut rows: Vec<Row> = Vec::new();

    // ------------------------------------------------------------ validity
    let loaded = match relance::cli::load_project(&dir) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot load {}: {}", dir.display(), e.0);
            std::process::exit(2);
        }
    };
    let src_bytes: usize = loaded.sources.files().map(|(_, f)| f.text.len()).sum();
    let checked = relance::driver::check_sources(&loaded.sources, Problems::new(), threads);
    let errors = checked
        .diagnostics
        .iter()
        .filter(|d| d.severity() == Severity::Error)
        .count();
    let warnings = checked.diagnostics.len() - errors;
    println!("  relance check: {errors} error(s), {warnings} warning(s)");
    for d in checked.diagnostics.iter().take(5) {
        let place = d
            .primary
            .as_ref()
            .map(|l| {
                let f = loaded.sources.files().find(|(id, _)| *id == l.span.file);
                f.map(|(_, f)| f.path.clone()).unwrap_or_default()
            })
            .unwrap_or_default();
        println!("    {} {}: {}", d.code, place, d.message);
    }
    rows.push(Row {
        figure: "synthetic project checks clean".into(),
        value: format!("{errors} errors, {warnings} warnings"),
        target: "0 errors".into(),
        result: verdict(errors == 0 && deterministic),
    });
    drop(checked);

    // ------------------------------------------------------------ peak heap
    let before = reset_peak();
    let t = Instant::now();
    let fresh = relance::cli::load_project(&dir).expect("project loads");
    let checked = relance::driver::check_sources(&fresh.sources, fresh.problems, threads);
    let inproc_cold = t.elapsed();
    let peak_heap = PEAK.load(Ordering::Relaxed) - before;
    let kept_heap = LIVE.load(Ordering::Relaxed).saturating_sub(before);
    black_box(&checked);
    drop(checked);
    drop(fresh.sources);
    rows.push(Row {
        figure: format!("peak live heap, load + check in-process ({threads} threads)"),
        value: format!("{:.1} MB", peak_heap as f64 / MB),
        target: "< 200 MB".into(),
        result: verdict((peak_heap as f64) < 200.0 * MB),
    });

    // ------------------------------------------------------------ child process
    let exe = env!("CARGO_BIN_EXE_relance");
    let runs = 10;
    let mut child_times = Vec::new();
    let mut child_ok = true;
    let cpu_before = children_usage().map(|u| u.1);
    for _ in 0..runs {
        let t = Instant::now();
        let status = Command::new(exe)
            .arg("check")
            .arg(&dir)
            .arg("--color")
            .arg("never")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        child_times.push(t.elapsed());
        child_ok &= status.is_ok_and(|s| s.success());
    }
    let first_run = child_times[0];
    child_times.sort();
    let usage = children_usage();
    let child_cpu = match (usage, cpu_before) {
        (Some((_, after)), Some(before)) => Some((after - before) / runs as u32),
        _ => None,
    };
    rows.push(Row {
        figure: format!("`relance check` wall time, child process ({runs} runs)"),
        value: format!(
            "min {:.3} s, median {:.3} s",
            secs(child_times[0]),
            secs(median(&child_times))
        ),
        target: "< 1 s".into(),
        result: verdict(child_ok && median(&child_times) < Duration::from_secs(1)),
    });
    match usage {
        Some((rss, _)) => rows.push(Row {
            figure: "`relance check` peak RSS, child process (getrusage)".into(),
            value: format!("{:.1} MB", rss as f64 / MB),
            target: "< 200 MB".into(),
            result: verdict((rss as f64) < 200.0 * MB),
        }),
        None => rows.push(Row {
            figure: "`relance check` peak RSS, child process".into(),
            value: "n/a (not Linux)".into(),
            target: "< 200 MB".into(),
            result: "N/A",
        }),
    }

    // ------------------------------------------------------------ one core
    let sources = &loaded.sources;
    let _ = relance::driver::parse_all(sources, 1); // warm-up
    let full1 = times(11, || {
        let c = relance::driver::check_sources(sources, Problems::new(), 1);
        black_box(c.diagnostics.len());
    });
    let parse1 = times(7, || {
        black_box(relance::driver::parse_all(sources, 1));
    });
    let pest1 = times(7, || {
        for (_, f) in sources.files() {
            black_box(pest_parse(&f.text));
        }
    });
    let fulln = times(7, || {
        let c = relance::driver::check_sources(sources, Problems::new(), threads);
        black_box(c.diagnostics.len());
    });
    let (files1, _) = relance::driver::parse_all(sources, 1);
    let check_only = times(7, || {
        let mut p = Problems::new();
        relance::check::check_project(sources, &files1, &mut p);
        black_box(p.iter().count());
    });
    drop(files1);
    let tput = mbps(src_bytes, full1.cpu());
    rows.push(Row {
        figure: "parse + check throughput, in-process, 1 thread (CPU time)".into(),
        value: format!(
            "median {tput:.1} MB/s, best {:.1} MB/s",
            mbps(src_bytes, full1.cpu.first().copied().unwrap_or(full1.cpu()))
        ),
        target: ">= 10 MB/s".into(),
        result: verdict(tput >= 10.0),
    });

    // ------------------------------------------------------------ serde_json
    // One large campaign file (modules concatenated: declarations may come
    // in any order and all names are unique) and a JSON document of the
    // same declarations, as many modules as needed to reach the same size.
    let target_size = 512 * 1024;
    let mut camp = String::new();
    let mut k = 1;
    while camp.len() < target_size && k < texts.len() {
        camp.push_str(&texts[k]);
        camp.push('\n');
        k += 1;
    }
    let camp_modules = k - 1;
    let mut json_items = Vec::new();
    let mut json = String::new();
    let mut j = 1;
    while j < project.len() {
        if let serde_json::Value::Array(items) = project[j].json() {
            json_items.extend(items);
        }
        json = serde_json::to_string_pretty(&serde_json::Value::Array(json_items.clone()))
            .expect("JSON serialises");
        j += 1;
        if json.len() >= camp.len() {
            break;
        }
    }
    let json_modules = j - 1;
    // Sanity: both inputs parse.
    let mut p = Problems::new();
    let ast = relance::syntax::parse_file(FileId(0), &camp, &mut p);
    assert!(p.iter().next().is_none(), "the concatenated file parses");
    let camp_decls = ast.decls.len();
    drop(ast);
    assert!(serde_json::from_str::<serde_json::Value>(&json).is_ok());
    let ours = times_for(10, Duration::from_secs(2), || {
        black_box(parse_one(black_box(&camp)));
    });
    let theirs = times_for(10, Duration::from_secs(2), || {
        let v: serde_json::Value = serde_json::from_str(black_box(&json)).expect("valid JSON");
        black_box(v);
    });
    let ours_mbps = mbps(camp.len(), ours.cpu());
    let theirs_mbps = mbps(json.len(), theirs.cpu());
    let ratio = ours_mbps / theirs_mbps;
    rows.push(Row {
        figure: "parse vs serde_json::Value, same-size file (MB/s ratio)".into(),
        value: format!("{ratio:.2}x ({ours_mbps:.1} vs {theirs_mbps:.1} MB/s)"),
        target: ">= 0.25x".into(),
        result: verdict(ratio >= 0.25),
    });

    // The whole project, file by file, against its JSON twin file by file.
    let json_texts: Vec<String> = project[1..]
        .iter()
        .map(|f| serde_json::to_string_pretty(&f.json()).expect("JSON serialises"))
        .collect();
    let camp_all: usize = texts[1..].iter().map(String::len).sum();
    let json_all: usize = json_texts.iter().map(String::len).sum();
    let ours_all = times(5, || {
        for t in &texts[1..] {
            black_box(parse_one(t));
        }
    });
    let theirs_all = times(5, || {
        for t in &json_texts {
            let v: serde_json::Value = serde_json::from_str(t).expect("valid JSON");
            black_box(v);
        }
    });

    // ------------------------------------------------------------ report
    println!();
    println!("{:<60} {:<38} {:<11} result", "figure", "value", "target");
    println!("{}", "-".repeat(60 + 1 + 38 + 1 + 11 + 7));
    for r in &rows {
        println!(
            "{:<60} {:<38} {:<11} {}",
            r.figure, r.value, r.target, r.result
        );
    }

    println!();
    println!("details (medians; MB = 10^6 bytes; in-process single-thread figures are CPU time)");
    println!(
        "  child `relance check` runs: first {}, min {}, median {}, max {}; CPU (user+sys) per run {}",
        ms(first_run),
        ms(child_times[0]),
        ms(median(&child_times)),
        ms(child_times[child_times.len() - 1]),
        child_cpu.map(ms).unwrap_or_else(|| "n/a".into())
    );
    println!(
        "  in-process load + check, {threads} threads, first run: {} (peak heap {:.1} MB, {:.1} MB still live after, sources {:.1} MB)",
        ms(inproc_cold),
        peak_heap as f64 / MB,
        kept_heap as f64 / MB,
        src_bytes as f64 / MB
    );
    let m_full = full1.cpu();
    let m_parse = parse1.cpu();
    let m_pest = pest1.cpu();
    let m_check = check_only.cpu();
    let pct = |d: Duration| 100.0 * secs(d) / secs(m_full);
    println!(
        "  1 thread: parse + check {} CPU ({:.1} MB/s, {} lines/s; wall {}, best CPU {})",
        ms(m_full),
        tput,
        thousands((lines as f64 / secs(m_full)) as usize),
        ms(full1.wall()),
        ms(full1.cpu.first().copied().unwrap_or(m_full)),
    );
    println!(
        "    parse_all          {:>10}  {:>5.1}%  {:.1} MB/s",
        ms(m_parse),
        pct(m_parse),
        mbps(src_bytes, m_parse)
    );
    println!(
        "      pest alone       {:>10}  {:>5.1}%  {:.1} MB/s",
        ms(m_pest),
        pct(m_pest),
        mbps(src_bytes, m_pest)
    );
    let rest = m_parse.saturating_sub(m_pest);
    println!(
        "      guard + lowering {:>10}  {:>5.1}%  (parse_all minus pest)",
        ms(rest),
        pct(rest)
    );
    println!(
        "    check_project      {:>10}  {:>5.1}%",
        ms(m_check),
        pct(m_check)
    );
    println!(
        "  {threads} threads: parse + check {} ({:.1} MB/s)",
        ms(fulln.wall()),
        mbps(src_bytes, fulln.wall())
    );
    println!(
        "  same-size file: .camp {} bytes ({camp_modules} modules, {camp_decls} declarations) in {} = {ours_mbps:.1} MB/s; \
         JSON {} bytes ({json_modules} modules, pretty-printed) in {} = {theirs_mbps:.1} MB/s",
        thousands(camp.len()),
        ms(ours.cpu()),
        thousands(json.len()),
        ms(theirs.cpu()),
    );
    println!(
        "  whole project file by file: .camp {:.2} MB in {} = {:.1} MB/s; JSON twin {:.2} MB in {} = {:.1} MB/s; \
         same content {:.2}x faster as .camp",
        camp_all as f64 / MB,
        ms(ours_all.cpu()),
        mbps(camp_all, ours_all.cpu()),
        json_all as f64 / MB,
        ms(theirs_all.cpu()),
        mbps(json_all, theirs_all.cpu()),
        secs(theirs_all.cpu()) / secs(ours_all.cpu()),
    );

    println!(
        "  bench ran in {:.1} s; load average at end: {}",
        secs(bench_start.elapsed()),
        loadavg()
    );
    if std::env::var_os("RELANCE_BENCH_KEEP").is_some() {
        println!("  kept {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
}
