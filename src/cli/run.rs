//! `relance run`: reads a plan, contacts and events, simulates, and writes
//! the outbox, the summary, the trace and the report.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use crate::plan::Plan;
use crate::run::{self, Forecast, Options, input};

pub struct RunArgs {
    pub plan: PathBuf,
    pub contacts: PathBuf,
    pub events: Option<PathBuf>,
    pub from: String,
    pub until: String,
    pub out: Option<PathBuf>,
    pub summary: Option<PathBuf>,
    pub strict: bool,
    pub trace: Option<String>,
    pub engagement: Option<PathBuf>,
    pub seed: u64,
    pub report: bool,
    pub timings: bool,
    pub threads: usize,
}

/// How many bad lines are printed one by one before a count.
const SHOWN_PROBLEMS: usize = 50;

fn timestamp(flag: &str, s: &str) -> Result<i64, String> {
    input::parse_timestamp(s).ok_or_else(|| {
        format!("`{flag} {s}` is not an RFC 3339 timestamp such as 2026-01-15T09:00:00Z")
    })
}

fn read_plan(path: &Path) -> Result<Plan, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "cannot read the plan `{}`: {e}; build it first with `relance build`",
            path.display()
        )
    })?;
    serde_json::from_str(&text).map_err(|e| {
        format!(
            "`{}` is not a relance plan: {e}; rebuild it with `relance build`",
            path.display()
        )
    })
}

pub fn run(args: RunArgs) -> ExitCode {
    match execute(args) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

fn peak_rss_mb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024)
}

fn execute(args: RunArgs) -> Result<ExitCode, String> {
    let started = Instant::now();
    let from = timestamp("--from", &args.from)?;
    let until = timestamp("--until", &args.until)?;
    if until <= from {
        return Err(format!(
            "the window is empty: `--until {}` must be after `--from {}`",
            args.until, args.from
        ));
    }
    let plan = read_plan(&args.plan)?;
    let forecast = match &args.engagement {
        None => None,
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| format!("cannot read `{}`: {e}", p.display()))?;
            Some(Forecast::parse(
                &text,
                &p.display().to_string(),
                &plan,
                args.seed,
            )?)
        }
    };
    let mut timings = Vec::new();
    let mut lap = Instant::now();
    let (contacts, mut problems) = input::read_contacts(&args.contacts, &plan)?;
    timings.push(("contacts", lap.elapsed()));
    lap = Instant::now();
    let (events, event_problems) = match &args.events {
        Some(p) => input::read_events(p, &plan, &contacts, args.threads)?,
        None => input::events_from_jsonl("", &plan, &contacts, "-")?,
    };
    problems.extend(event_problems);
    timings.push(("events", lap.elapsed()));
    for p in problems.iter().take(SHOWN_PROBLEMS) {
        eprintln!("{}: {p}", if p.skipped { "error" } else { "warning" });
    }
    if problems.len() > SHOWN_PROBLEMS {
        eprintln!(
            "… and {} more bad input line(s)",
            problems.len() - SHOWN_PROBLEMS
        );
    }
    if args.strict && !problems.is_empty() {
        eprintln!(
            "run refused: {} bad input line(s) and `--strict`; fix them or drop `--strict` to skip them",
            problems.len()
        );
        return Ok(ExitCode::from(1));
    }
    if let Some(id) = &args.trace
        && !contacts.index.contains_key(id)
    {
        return Err(format!("`--trace {id}`: no contact has this id"));
    }
    lap = Instant::now();
    let opts = Options {
        from,
        until,
        threads: args.threads,
        trace: args.trace.clone(),
        forecast: forecast.as_ref(),
    };
    let outcome = run::simulate(&plan, &contacts, &events, &opts)?;
    timings.push(("simulate", lap.elapsed()));
    lap = Instant::now();
    let write_err = |p: &Path, e: std::io::Error| format!("cannot write `{}`: {e}", p.display());
    match &args.out {
        Some(p) => {
            let file = std::fs::File::create(p).map_err(|e| write_err(p, e))?;
            let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
            outcome
                .write_outbox(&contacts, &mut w)
                .and_then(|_| w.flush())
                .map_err(|e| write_err(p, e))?;
        }
        None => {
            let stdout = std::io::stdout();
            let mut w = std::io::BufWriter::new(stdout.lock());
            outcome
                .write_outbox(&contacts, &mut w)
                .and_then(|_| w.flush())
                .map_err(|e| format!("cannot write the outbox: {e}"))?;
        }
    }
    let read = events.lines;
    if let Some(p) = &args.summary {
        let json = outcome.summary_json(problems.len(), read, args.report);
        let mut text = serde_json::to_string_pretty(&json).unwrap_or_default();
        text.push('\n');
        std::fs::write(p, text).map_err(|e| write_err(p, e))?;
    }
    timings.push(("write", lap.elapsed()));
    if let Some(lines) = &outcome.trace {
        eprintln!(
            "trace of contact `{}`:",
            args.trace.as_deref().unwrap_or("")
        );
        for l in lines {
            eprintln!("  {l}");
        }
    }
    eprint!("{}", outcome.summary_text(problems.len(), read));
    if args.report {
        eprint!("{}", outcome.report_text());
    }
    if args.timings {
        let parts: Vec<String> = timings
            .iter()
            .map(|(k, d)| format!("{k} {:.2}s", d.as_secs_f64()))
            .collect();
        eprintln!(
            "timings: {}, total {:.2}s, peak-rss {} MB",
            parts.join(", "),
            started.elapsed().as_secs_f64(),
            peak_rss_mb().map_or("?".to_string(), |m| m.to_string())
        );
    }
    Ok(ExitCode::SUCCESS)
}
