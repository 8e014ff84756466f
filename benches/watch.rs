//! `cargo bench --bench watch`: save-to-preview latency of `relance watch`
//! on the synthetic project of 100 files, measured from the file write to
//! an SSE client holding the updated page, and the rebuild time alone.
//!
//! The real binary runs (`CARGO_BIN_EXE_relance`, release settings); the
//! bench is its client: it writes a `.camp` file (a template's HTML body
//! changes), waits for the `build` event on `/__relance/events`, then
//! fetches the template's preview page and checks it holds the new text.
//! That is what `live.js` does in the browser. 50 edits, one every 250 ms.
//! Nothing asserts on time: a slow machine prints FAIL, the build passes.

#[path = "synth/mod.rs"]
mod synth;

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const EDITS: usize = 50;
const FILES: usize = 100;

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// A `.camp` file holding an email template with an inline HTML body, and
/// that template's name.
fn pick_template(dir: &Path) -> (PathBuf, String) {
    let mut files: Vec<PathBuf> = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read the project") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "camp") {
                files.push(p);
            }
        }
    }
    files.sort();
    for f in files {
        let text = std::fs::read_to_string(&f).expect("read a file");
        for line in text.lines() {
            if let Some(rest) = line.trim().strip_prefix("template ")
                && let Some((name, channel)) = rest.split_once(':')
                && channel.trim().starts_with("email")
                && text.contains("<h1>")
            {
                return (f, name.trim().to_string());
            }
        }
    }
    panic!("no email template with an <h1> in the synthetic project");
}

fn main() {
    let started = Instant::now();
    println!("relance watch latency benchmark (benches/watch.rs)");
    println!("load average at start: {}", loadavg());
    let dir = std::env::temp_dir().join(format!("relance-bench-watch-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let project = synth::generate(synth::DEFAULT_SEED, FILES);
    let (bytes, lines) = synth::write_project(&dir, &project).expect("write the project");
    println!(
        "synthetic project: seed {}, {FILES} files, {lines} lines, {bytes} bytes, in {}",
        synth::DEFAULT_SEED,
        dir.display()
    );

    let first = Instant::now();
    let watch = common::Watch::start(&dir);
    let startup = first.elapsed();
    let first_line = watch
        .lines()
        .into_iter()
        .find(|l| l.contains("] built in"))
        .unwrap_or_default();
    println!("first build: {first_line} (start to served: {startup:?})");

    let (file, template) = pick_template(&dir);
    let index = watch.get("/preview/index.html").text();
    let prefix = format!("href=\"{template}/");
    let persona = index
        .split(&prefix)
        .nth(1)
        .and_then(|r| r.split(".html").next())
        .expect("a preview of the template in the index")
        .to_string();
    let page = format!("/preview/{template}/{persona}.html");
    println!(
        "editing `{}` (template `{template}`), reading {page}",
        file.strip_prefix(&dir).unwrap_or(&file).display()
    );

    let mut events = common::Events::connect(watch.port);
    let mut site = events.next_build()["site"].as_u64().unwrap_or(0);
    let original = std::fs::read_to_string(&file).expect("read the edited file");
    let mut latencies = Vec::new();
    let mut to_event = Vec::new();
    let mut rebuilds = Vec::new();
    for i in 0..EDITS {
        std::thread::sleep(Duration::from_millis(250));
        let marker = format!("Edit {i} here");
        let text = original.replacen("<h1>", &format!("<h1>{marker} "), 1);
        let t0 = Instant::now();
        std::fs::write(&file, text).expect("write the edit");
        // The build event whose site is new, then the page.
        let event = loop {
            let e = events.next_build();
            if e["site"].as_u64().unwrap_or(0) > site {
                break e;
            }
        };
        let t_event = t0.elapsed();
        site = event["site"].as_u64().unwrap_or(site);
        let body = watch.get(&page).text();
        let t_page = t0.elapsed();
        assert!(
            body.contains(&marker),
            "edit {i}: the page lacks `{marker}`"
        );
        latencies.push(t_page.as_secs_f64() * 1000.0);
        to_event.push(t_event.as_secs_f64() * 1000.0);
        rebuilds.push(event["duration_ms"].as_f64().unwrap_or(f64::NAN));
    }
    let _ = std::fs::write(&file, &original);
    drop(events);
    drop(watch);
    let _ = std::fs::remove_dir_all(&dir);

    for v in [&mut latencies, &mut to_event, &mut rebuilds] {
        v.sort_by(f64::total_cmp);
    }
    let row = |figure: &str, value: String, target: &str, pass: Option<bool>| {
        let result = match pass {
            Some(true) => "PASS",
            Some(false) => "FAIL",
            None => "-",
        };
        println!("{figure:<52} {value:<30} {target:<10} {result}");
    };
    println!();
    println!("{:<52} {:<30} {:<10} result", "figure", "value", "target");
    println!("{}", "-".repeat(100));
    let (p50, p95) = (percentile(&latencies, 50.0), percentile(&latencies, 95.0));
    row(
        "save to updated page (SSE client), p50",
        format!("{p50:.1} ms"),
        "< 100 ms",
        Some(p50 < 100.0),
    );
    row(
        "save to updated page (SSE client), p95",
        format!("{p95:.1} ms"),
        "< 250 ms",
        Some(p95 < 250.0),
    );
    row(
        "save to updated page, max",
        format!("{:.1} ms", latencies.last().copied().unwrap_or(f64::NAN)),
        "",
        None,
    );
    row(
        "save to build event, p50 / p95",
        format!(
            "{:.1} / {:.1} ms",
            percentile(&to_event, 50.0),
            percentile(&to_event, 95.0)
        ),
        "",
        None,
    );
    let r50 = percentile(&rebuilds, 50.0);
    row(
        "rebuild alone (one file changed), p50",
        format!("{r50:.1} ms"),
        "< 20 ms",
        Some(r50 < 20.0),
    );
    row(
        "rebuild alone, p95 / max",
        format!(
            "{:.1} / {:.1} ms",
            percentile(&rebuilds, 95.0),
            rebuilds.last().copied().unwrap_or(f64::NAN)
        ),
        "",
        None,
    );
    println!();
    println!(
        "{EDITS} edits; the latency includes the {} ms debounce. Bench ran in {:.1} s; load average at end: {}",
        relance::watch::QUIET.as_millis(),
        started.elapsed().as_secs_f64(),
        loadavg()
    );
}
