//! Writes a synthetic contact base and event stream for `campaigns/`, the
//! input of `relance run` in the runner benchmark (`benches/run.rs`).
//!
//! ```text
//! cargo run --release --example runbase -- --out DIR [--contacts 1000000]
//!     [--events 10000000] [--days 30] [--from 2026-11-01T00:00:00Z]
//!     [--seed 42] [--history-days 0] [--bad-lines]
//! ```
//!
//! Writes `DIR/contacts.jsonl`, `DIR/events.jsonl` (sorted by `at`) and
//! `DIR/README.txt` (the parameters, counts, and the `--from`/`--until` to
//! give `relance run`). Same arguments, same bytes. The generator is
//! `benches/synth/runbase.rs`; `docs/performance.md` ("Runner") describes
//! the data.

#[path = "../benches/synth/runbase.rs"]
mod runbase;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    let mut cfg = runbase::Config::default();
    let mut out: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |what: &str| args.next().ok_or_else(|| format!("{a} takes {what}"));
        let parsed: Result<(), String> = match a.as_str() {
            "--contacts" => number(value("a number"), &a).map(|n| cfg.contacts = n),
            "--events" => number(value("a number"), &a).map(|n| cfg.events = n),
            "--days" => number(value("a number of days"), &a).and_then(|n| {
                (1..=3650)
                    .contains(&n)
                    .then(|| cfg.days = n as u32)
                    .ok_or_else(|| "--days must be between 1 and 3650".to_string())
            }),
            "--history-days" => number(value("a number of days"), &a).and_then(|n| {
                (n <= 3650)
                    .then(|| cfg.history_days = n as u32)
                    .ok_or_else(|| "--history-days must be at most 3650".to_string())
            }),
            "--seed" => number(value("a number"), &a).map(|n| cfg.seed = n),
            "--from" => value("a timestamp").and_then(|v| {
                runbase::parse_timestamp(&v)
                    .map(|t| cfg.from = t)
                    .ok_or_else(|| {
                        format!("--from takes a UTC timestamp like 2026-11-01T00:00:00Z, not `{v}`")
                    })
            }),
            "--out" => value("a folder").map(|v| out = Some(PathBuf::from(v))),
            "--bad-lines" => {
                cfg.bad_lines = true;
                Ok(())
            }
            "-h" | "--help" => return usage(""),
            _ => Err(format!("unexpected argument `{a}`")),
        };
        if let Err(problem) = parsed {
            return usage(&problem);
        }
    }
    let Some(dir) = out else {
        return usage("missing --out DIR");
    };
    if cfg.contacts == 0 && cfg.events > 0 {
        return usage("events need at least one contact");
    }

    let start = Instant::now();
    let stats = match runbase::write_dir(&cfg, &dir) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot write to `{}`: {e}", dir.display());
            return ExitCode::from(2);
        }
    };
    let secs = start.elapsed().as_secs_f64();
    let mb = |b: u64| b as f64 / 1_000_000.0;
    eprintln!(
        "wrote {} contacts ({:.1} MB) and {} events ({} in history; {:.1} MB) to {} in {secs:.1} s",
        stats.contacts,
        mb(stats.contacts_bytes),
        stats.window_events + stats.history_events,
        stats.history_events,
        mb(stats.events_bytes),
        dir.display()
    );
    eprintln!(
        "window: --from {} --until {}",
        runbase::format_timestamp(cfg.from),
        runbase::format_timestamp(cfg.until())
    );
    if cfg.bad_lines {
        let bad: u64 =
            stats.bad_contacts.values().sum::<u64>() + stats.bad_events.values().sum::<u64>();
        eprintln!("bad lines: {bad} (by kind in README.txt)");
    }
    ExitCode::SUCCESS
}

fn number(v: Result<String, String>, flag: &str) -> Result<u64, String> {
    let v = v?;
    v.replace('_', "")
        .parse()
        .map_err(|_| format!("{flag} takes a whole number, not `{v}`"))
}

fn usage(problem: &str) -> ExitCode {
    if !problem.is_empty() {
        eprintln!("error: {problem}");
    }
    eprintln!(
        "usage: cargo run --release --example runbase -- --out DIR [--contacts N] [--events N] \
         [--days N] [--from 2026-11-01T00:00:00Z] [--seed S] [--history-days N] [--bad-lines]"
    );
    ExitCode::from(if problem.is_empty() { 0 } else { 2 })
}
