//! `cargo bench --bench lsp`: `relance lsp` on the synthetic project of
//! 1,000 files, driven over standard input and output as an editor drives
//! it (`tests/lsp/client.rs`).
//!
//! - start-up to first diagnostics: from starting the process to the
//!   diagnostics of the first opened file (initialize, open, the project
//!   read, parsed and checked);
//! - change to diagnostics: one open `.camp` file edited 60 times (full
//!   text, as VS Code and Neovim send it), alternately breaking and fixing
//!   a name, each time waiting for the diagnostics of that version.
//!
//! Nothing asserts on time: a slow machine prints FAIL, the build passes.

#[path = "synth/mod.rs"]
mod synth;

#[path = "../tests/lsp/client.rs"]
mod client;

use std::path::{Path, PathBuf};
use std::time::Instant;

const EDITS: usize = 60;

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

/// A `.camp` file with a segment whose definition names another segment.
fn pick(dir: &Path) -> (PathBuf, String) {
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
        if let Some(line) = text.lines().find(|l| l.starts_with("segment ")) {
            return (f, line.to_string());
        }
    }
    panic!("no segment in the synthetic project");
}

/// Reads messages until a `$/relance/checked` notification after the
/// first `seen` notifications (the full check of the current state).
fn wait_checked(c: &mut client::Client, seen: usize) {
    let ok = c.settle(|c| {
        c.notifications[seen.min(c.notifications.len())..]
            .iter()
            .any(|n| n["method"] == "$/relance/checked")
    });
    assert!(ok, "no full check announced");
}

fn main() {
    let started = Instant::now();
    println!("relance lsp latency benchmark (benches/lsp.rs)");
    println!("load average at start: {}", loadavg());
    let dir = std::env::temp_dir().join(format!("relance-bench-lsp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let files = synth::DEFAULT_FILES;
    let project = synth::generate(synth::DEFAULT_SEED, files);
    let (bytes, lines) = synth::write_project(&dir, &project).expect("write the project");
    let dir = std::fs::canonicalize(&dir).expect("the project folder");
    println!(
        "synthetic project: seed {}, {files} files, {lines} lines, {bytes} bytes, in {}",
        synth::DEFAULT_SEED,
        dir.display()
    );
    let (file, segment_line) = pick(&dir);
    let text = std::fs::read_to_string(&file).expect("read the edited file");

    let t0 = Instant::now();
    let mut c = client::Client::start(&dir);
    let u = c.open(&file, &text);
    let first = c.wait_version(&u, 1);
    let startup = t0.elapsed().as_secs_f64() * 1000.0;
    println!(
        "start-up to first diagnostics: {startup:.0} ms ({} diagnostics in the opened file)",
        first.len()
    );

    // Breaking: the segment's first word after `=` gets a suffix.
    let broken_line = segment_line.replacen(" = ", " = zz_unknown_ and ", 1);
    let broken = text.replacen(&segment_line, &broken_line, 1);
    assert_ne!(broken, text);
    // The full check of the opened state, before the edits.
    wait_checked(&mut c, 0);
    let mut all = Vec::new();
    let mut full = Vec::new();
    let mut errors_seen = 0;
    for i in 0..EDITS {
        let version = 2 + i as i64;
        let body = if i % 2 == 0 { &broken } else { &text };
        let t = Instant::now();
        c.change(&u, version, body);
        let d = c.wait_version(&u, version);
        all.push(t.elapsed().as_secs_f64() * 1000.0);
        if !d.is_empty() {
            errors_seen += 1;
        }
        // Then the full check (templates, plan, personas) of this version.
        let seen = c.notifications.len();
        wait_checked(&mut c, seen);
        full.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    assert_eq!(errors_seen, EDITS / 2, "every other edit is an error");
    let code = c.shutdown();
    assert_eq!(code, 0);
    let _ = std::fs::remove_dir_all(&dir);

    all.sort_by(f64::total_cmp);
    full.sort_by(f64::total_cmp);
    let row = |figure: &str, value: String, target: &str, pass: Option<bool>| {
        let result = match pass {
            Some(true) => "PASS",
            Some(false) => "FAIL",
            None => "-",
        };
        println!("{figure:<44} {value:<22} {target:<10} {result}");
    };
    println!();
    println!("{:<44} {:<22} {:<10} result", "figure", "value", "target");
    println!("{}", "-".repeat(84));
    row(
        "start-up to first diagnostics",
        format!("{startup:.0} ms"),
        "< 1000 ms",
        Some(startup < 1000.0),
    );
    let (p50, p95) = (percentile(&all, 50.0), percentile(&all, 95.0));
    row(
        "change to diagnostics, p50",
        format!("{p50:.1} ms"),
        "< 20 ms",
        Some(p50 < 20.0),
    );
    row(
        "change to diagnostics, p95",
        format!("{p95:.1} ms"),
        "< 50 ms",
        Some(p95 < 50.0),
    );
    row(
        "change to diagnostics, min / max",
        format!("{:.1} / {:.1} ms", all[0], all[all.len() - 1]),
        "",
        None,
    );
    row(
        "change to full check published, p50 / p95",
        format!(
            "{:.0} / {:.0} ms",
            percentile(&full, 50.0),
            percentile(&full, 95.0)
        ),
        "",
        None,
    );
    println!();
    println!(
        "{EDITS} edits of `{}`. Bench ran in {:.1} s; load average at end: {}",
        file.strip_prefix(&dir).unwrap_or(&file).display(),
        started.elapsed().as_secs_f64(),
        loadavg()
    );
}
