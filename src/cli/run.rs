//! `relance run`: reads a plan, contacts and events, simulates, and writes
//! the outbox, the summary, the trace and the report.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use crate::plan::Plan;
use crate::run::{self, Forecast, Options, input};

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// The project folder: its `relance.toml` (found here or above) gives
    /// the defaults of every flag below but `--plan`'s.
    #[arg(default_value = ".")]
    pub path: PathBuf,
    /// The plan written by `relance build` (default: `plan.json` in the
    /// project's build folder, `PROJECT/build/plan.json`).
    #[arg(long)]
    pub plan: Option<PathBuf>,
    /// Contacts: JSONL (one object per line with `id`, fields, `lists`,
    /// `tags`) or CSV (a `.csv` file; header row; sets as `a|b`).
    /// Default: `contacts` under `[run]` in relance.toml.
    #[arg(long)]
    pub contacts: Option<PathBuf>,
    /// Events as JSONL: `{"contact", "event", "at", …fields}`.
    /// Default: `events` under `[run]` in relance.toml.
    #[arg(long)]
    pub events: Option<PathBuf>,
    /// Start of the simulated window (RFC 3339); earlier events are history.
    /// Default: `from` under `[run]` in relance.toml.
    #[arg(long)]
    pub from: Option<String>,
    /// End of the window (excluded). Default: `until` under `[run]`.
    #[arg(long)]
    pub until: Option<String>,
    /// Write the outbox JSONL here (default: standard output).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Write the summary as JSON here (it is always printed to stderr).
    #[arg(long)]
    pub summary: Option<PathBuf>,
    /// Fail (exit 1) on any bad input line instead of skipping it.
    #[arg(long)]
    pub strict: bool,
    /// Print one contact's journey step by step (stderr).
    #[arg(long, value_name = "CONTACT")]
    pub trace: Option<String>,
    /// Draw opens, clicks, replies and goal events from these rates (TOML).
    #[arg(long, value_name = "RATES")]
    pub engagement: Option<PathBuf>,
    /// Seed of `--engagement`'s draws.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Also print sends per day per channel and the pressure state of the base.
    #[arg(long)]
    pub report: bool,
    /// Print the time of each stage and the peak memory (stderr).
    #[arg(long)]
    pub timings: bool,
    /// Worker threads (default: every core); never changes the output.
    #[arg(long)]
    pub threads: Option<usize>,
}

/// How many bad lines are printed one by one before a count.
const SHOWN_PROBLEMS: usize = 50;

fn timestamp(flag: &str, s: &str) -> Result<i64, String> {
    input::parse_timestamp(s).ok_or_else(|| {
        format!("`{flag} {s}` is not an RFC 3339 timestamp such as 2026-01-15T09:00:00Z")
    })
}

/// A plan larger than this is not one `relance build` wrote.
const MAX_PLAN_BYTES: u64 = 1 << 30;

/// Reads the plan at `path`; `build` is the command that writes it there.
fn read_plan(path: &Path, build: &str) -> Result<Plan, String> {
    let text = crate::cli::load::read_run_input(path, "the plan", MAX_PLAN_BYTES)
        .map_err(|e| format!("{e}; build it first with `{build}`"))?;
    // The whole plan is checked before anything runs; the first problem
    // is named by its JSON path.
    let plan = crate::plan::parse_plan(&text).map_err(|e| {
        format!(
            "{}: {e}\n  `{}` is not a plan this relance can run: rebuild it with `{build}`",
            path.display(),
            path.display()
        )
    })?;
    crate::plan::validate(&plan).map_err(|e| {
        format!(
            "{}: {e}\n  the plan was edited or written by another tool: fix it, or rebuild it with `{build}`",
            path.display()
        )
    })?;
    Ok(plan)
}

pub fn run(args: RunArgs, cores: usize) -> ExitCode {
    let threads = args.threads.unwrap_or(cores).max(1);
    match execute(args, threads) {
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

/// The inputs of a run: each flag, or else the project's `relance.toml`.
struct Inputs {
    plan: PathBuf,
    /// The command that writes `plan`.
    build: String,
    contacts: PathBuf,
    events: Option<PathBuf>,
    from: String,
    until: String,
}

/// Fills what the flags leave out from the project's manifest; a manifest
/// with errors stops the run (its diagnostics are printed).
fn inputs(args: &RunArgs) -> Result<Result<Inputs, ExitCode>, String> {
    use super::manifest;
    let located = manifest::locate(&args.path).map_err(|e| e.0)?;
    let mut sources = crate::diagnostics::SourceMap::new();
    let (m, problems) = located.settings(&mut sources);
    if !problems.is_empty() {
        let failed = problems.has_errors();
        let shown = problems.into_sorted(&sources);
        let prefix = located.root.to_string_lossy().replace('\\', "/");
        eprint!(
            "{}",
            crate::diagnostics::render::human(
                &shown,
                &sources,
                &prefix,
                super::human_style(super::ColorArg::Auto)
            )
        );
        if failed {
            eprintln!(
                "run refused: fix `{}` first",
                located.manifest_path().display()
            );
            return Ok(Err(ExitCode::from(2)));
        }
    }
    let root = &located.root;
    let has_manifest = located.manifest.is_some();
    let missing = |flag: &str, key: &str| {
        if has_manifest {
            format!(
                "`--{flag}` is missing: give it, or set `{key}` under `[run]` in `{}`",
                located.manifest_path().display()
            )
        } else {
            format!(
                "`--{flag}` is missing: give it, or create `{}` with `{key}` under `[run]` (see docs/manifest.md)",
                located.manifest_path().display()
            )
        }
    };
    let project_arg = if root == Path::new(".") {
        String::new()
    } else {
        format!(" {}", root.display())
    };
    let (plan, build) = match &args.plan {
        Some(p) => {
            let dir = p.parent().filter(|d| !d.as_os_str().is_empty());
            let out = dir.map_or(".".to_string(), |d| d.display().to_string());
            (p.clone(), format!("relance build{project_arg} --out {out}"))
        }
        None => (
            manifest::under(root, m.build_dir()).join("plan.json"),
            format!("relance build{project_arg}"),
        ),
    };
    let contacts = match (&args.contacts, &m.run.contacts) {
        (Some(p), _) => p.clone(),
        (None, Some(p)) => manifest::under(root, p),
        (None, None) => return Err(missing("contacts", "contacts")),
    };
    let events = match (&args.events, &m.run.events) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(p)) => Some(manifest::under(root, p)),
        (None, None) => None,
    };
    let from = args
        .from
        .clone()
        .or(m.run.from.clone())
        .ok_or_else(|| missing("from", "from"))?;
    let until = args
        .until
        .clone()
        .or(m.run.until.clone())
        .ok_or_else(|| missing("until", "until"))?;
    Ok(Ok(Inputs {
        plan,
        build,
        contacts,
        events,
        from,
        until,
    }))
}

fn execute(args: RunArgs, threads: usize) -> Result<ExitCode, String> {
    let started = Instant::now();
    let inputs = match inputs(&args)? {
        Ok(i) => i,
        Err(code) => return Ok(code),
    };
    let from = timestamp("--from", &inputs.from)?;
    let until = timestamp("--until", &inputs.until)?;
    if until <= from {
        return Err(format!(
            "the window is empty: `--until {}` must be after `--from {}`",
            inputs.until, inputs.from
        ));
    }
    let plan = read_plan(&inputs.plan, &inputs.build)?;
    let forecast = match &args.engagement {
        None => None,
        Some(p) => {
            let text = crate::cli::load::read_run_input(p, "engagement rates", 4 << 20)?;
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
    crate::cli::load::check_run_input(&inputs.contacts, "contacts")?;
    if let Some(events) = &inputs.events {
        crate::cli::load::check_run_input(events, "events")?;
    }
    let (contacts, mut problems) = input::read_contacts(&inputs.contacts, &plan)?;
    timings.push(("contacts", lap.elapsed()));
    lap = Instant::now();
    let (events, event_problems) = match &inputs.events {
        Some(p) => input::read_events(p, &plan, &contacts, threads)?,
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
        threads,
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
    let events_file = args
        .events
        .as_ref()
        .map_or_else(String::new, |p| p.display().to_string());
    if let Some(p) = &args.summary {
        let json = outcome.summary_json(problems.len(), read, &events_file, args.report);
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
    eprint!(
        "{}",
        outcome.summary_text(problems.len(), read, &events_file)
    );
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
