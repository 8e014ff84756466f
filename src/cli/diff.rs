//! `relance diff OLD [NEW]`: load, check and plan both sides, then report
//! what will behave differently (`crate::diff`, `docs/diff.md`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, ValueEnum};

use super::{ColorArg, LoadError, Loaded, human_style, project_now};
use crate::diagnostics::{Problems, render};
use crate::driver::{self, Checked};
use crate::render::RenderCache;

#[derive(Args, Debug)]
pub struct DiffArgs {
    /// The old side: a project folder, or a git revision of the repository
    /// of the current folder (`main`, `HEAD~1`).
    old: String,
    /// The new side: a project folder or a git revision; default: the
    /// current folder.
    #[arg(default_value = ".")]
    new: String,
    /// The project folder inside the repository, for git revisions
    /// (default: the current folder's path in the repository).
    #[arg(long)]
    project: Option<PathBuf>,
    /// human (the default), markdown (a pull-request comment) or json.
    #[arg(long, value_enum, default_value_t = DiffFormat::Human)]
    format: DiffFormat,
    /// Exit with status 1 when any risk (R01xx) is found.
    #[arg(long)]
    deny_risks: bool,
    /// Reference time for personas' relative times (RFC 3339); default:
    /// the new side's `now` in relance.toml, else the current time.
    #[arg(long)]
    now: Option<String>,
    /// Colours (of the human report, and of the diagnostics of a side with
    /// errors): auto (on a terminal, without NO_COLOR), always or never.
    #[arg(long, value_enum, default_value_t = ColorArg::Auto)]
    color: ColorArg,
    /// Contacts (JSONL or CSV, as for `relance run`): both plans are
    /// simulated on them. Default: `contacts` under `[run]` in the new
    /// side's relance.toml (else the old side's).
    #[arg(long)]
    contacts: Option<PathBuf>,
    /// Events (JSONL, as for `relance run`). Default: `events` under `[run]`.
    #[arg(long)]
    events: Option<PathBuf>,
    /// Start of the simulated window (RFC 3339). Default: `from` under `[run]`.
    #[arg(long)]
    from: Option<String>,
    /// End of the window (excluded). Default: `until` under `[run]`.
    #[arg(long)]
    until: Option<String>,
    /// Leave out the impact on data, even when relance.toml names sample data.
    #[arg(long, conflicts_with_all = ["contacts", "events", "from", "until"])]
    no_data: bool,
    /// A PostgreSQL URL of a `relance serve` deployment: the runs waiting
    /// right now at each step the new plan removes.
    #[arg(long, value_name = "URL")]
    database: Option<String>,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum DiffFormat {
    Human,
    Markdown,
    Json,
}

/// A side's folder: the folder itself, or a revision written out to a
/// temporary folder (removed on drop).
struct Folder {
    path: PathBuf,
    temp: Option<PathBuf>,
}

impl Drop for Folder {
    fn drop(&mut self) {
        if let Some(t) = &self.temp {
            let _ = std::fs::remove_dir_all(t);
        }
    }
}

fn git(args: &[&str], env: &[(&str, &Path)]) -> Result<String, String> {
    let mut cmd = std::process::Command::new("git");
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    match cmd.output() {
        Ok(o) if o.status.success() => Ok(String::from_utf8_lossy(&o.stdout).trim().to_string()),
        Ok(o) => Err(String::from_utf8_lossy(&o.stderr).trim().to_string()),
        Err(e) => Err(format!("cannot run git: {e}")),
    }
}

/// `side` as a folder: an existing folder, else a git revision.
fn folder(side: &str, which: &str, project: Option<&Path>) -> Result<Folder, String> {
    let p = PathBuf::from(side);
    if p.is_dir() {
        return Ok(Folder {
            path: p,
            temp: None,
        });
    }
    let not_found = |why: String| {
        format!("the {which} side `{side}` is neither a folder nor a git revision ({why})")
    };
    let commit = git(
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{side}^{{commit}}"),
        ],
        &[],
    )
    .map_err(|e| {
        not_found(if e.is_empty() {
            "unknown revision".into()
        } else {
            e
        })
    })?;
    let top = git(&["rev-parse", "--show-toplevel"], &[]).map_err(not_found)?;
    let prefix = match project {
        Some(p) => p.to_string_lossy().trim_end_matches('/').to_string(),
        None => git(&["rev-parse", "--show-prefix"], &[])
            .map_err(not_found)?
            .trim_end_matches('/')
            .to_string(),
    };
    let temp = std::env::temp_dir().join(format!(
        "relance-diff-{}-{which}-{}",
        std::process::id(),
        &commit[..commit.len().min(12)]
    ));
    let _ = std::fs::remove_dir_all(&temp);
    std::fs::create_dir_all(&temp).map_err(|e| format!("cannot create {}: {e}", temp.display()))?;
    let guard = Folder {
        path: if prefix.is_empty() {
            temp.clone()
        } else {
            temp.join(&prefix)
        },
        temp: Some(temp.clone()),
    };
    // A private index: the repository's own index and work tree are not touched.
    let index = temp.join(".relance-diff-index");
    let env = [("GIT_INDEX_FILE", index.as_path())];
    let top_arg = ["-C", top.as_str()];
    let read = [&top_arg[..], &["read-tree", commit.as_str()]].concat();
    git(&read, &env).map_err(|e| format!("cannot read revision `{side}`: {e}"))?;
    let out_prefix = format!("{}/", temp.to_string_lossy());
    let mut checkout: Vec<&str> = top_arg.to_vec();
    checkout.extend(["checkout-index", "-a", "--prefix", out_prefix.as_str()]);
    git(&checkout, &env).map_err(|e| format!("cannot write revision `{side}`: {e}"))?;
    let _ = std::fs::remove_file(&index);
    if !guard.path.is_dir() {
        return Err(format!(
            "revision `{side}` has no folder `{prefix}` (give the project's path with `--project`)"
        ));
    }
    Ok(guard)
}

/// A loaded and checked side.
struct Analysed {
    loaded: Loaded,
    checked: Checked,
    prefix: String,
}

/// Loads, parses and checks the project at `path` as `relance check`
/// does, reusing what an earlier side (`reuse`) already did: the AST of
/// every `.camp` file with the same path, place and text, and the template
/// work kept in `cache` (compiled bodies, per-persona checks), redone only
/// for templates whose inputs changed. Two revisions of a project differ
/// in a few files, so the second side costs a fraction of the first.
fn analyse_side(
    path: &Path,
    now: i64,
    reuse: Option<&Analysed>,
    cache: &mut RenderCache,
) -> Result<Analysed, LoadError> {
    let mut loaded = super::load_project(path)?;
    // ASTs are reused only from a side without errors: parsing reports
    // errors only, and a reused file brings no diagnostics of its own.
    let reuse = reuse.filter(|r| r.checked.errors() == 0);
    let mut files: Vec<Option<crate::syntax::ast::File>> = Vec::new();
    let mut misses = Vec::new();
    for (id, f) in loaded.sources.files() {
        let same = reuse.and_then(|r| {
            let i = id.0 as usize;
            let old = (i < r.loaded.sources.len()).then(|| r.loaded.sources.get(id))?;
            (old.camp
                && f.camp
                && old.readable == f.readable
                && old.path == f.path
                && old.text == f.text)
                .then(|| r.checked.files.get(i).cloned())
                .flatten()
        });
        if same.is_none() {
            misses.push(id);
        }
        files.push(same);
    }
    let mut problems = Problems::new();
    for (ast, p) in driver::parse_files(&loaded.sources, &misses, super::threads()) {
        problems.extend(p);
        let i = ast.file.0 as usize;
        if let Some(slot) = files.get_mut(i) {
            *slot = Some(ast);
        }
    }
    let files: Vec<crate::syntax::ast::File> = files
        .into_iter()
        .enumerate()
        .map(|(i, f)| {
            f.unwrap_or_else(|| crate::syntax::ast::File {
                file: crate::diagnostics::FileId(i as u32),
                ..Default::default()
            })
        })
        .collect();
    problems.extend(std::mem::take(&mut loaded.problems));
    let templates =
        super::load_template_files(&loaded.root, &mut loaded.sources, &files, &mut problems);
    let none = None::<fn(&crate::render::RenderProject, &mut RenderCache)>;
    let (checked, _) = driver::check_parsed_cached(
        &loaded.sources,
        files,
        problems,
        &templates.contents,
        now,
        cache,
        none,
    );
    let prefix = loaded.root.to_string_lossy().replace('\\', "/");
    Ok(Analysed {
        loaded,
        checked,
        prefix,
    })
}

/// A checked side with its plan, or the exit code after its problems
/// were printed.
fn side(
    folder: &Folder,
    which: &str,
    now: i64,
    color: ColorArg,
    reuse: Option<&Analysed>,
    cache: &mut RenderCache,
) -> Result<(Analysed, crate::plan::Plan), ExitCode> {
    let a = match analyse_side(&folder.path, now, reuse, cache) {
        Ok(a) => a,
        Err(LoadError(message)) => {
            eprintln!("error: the {which} side: {message}");
            return Err(ExitCode::from(2));
        }
    };
    if a.checked.errors() > 0 {
        eprint!(
            "{}",
            render::human(
                &a.checked.diagnostics,
                &a.loaded.sources,
                &a.prefix,
                human_style(color)
            )
        );
        eprintln!(
            "error: the {which} side ({}) has errors: fix them to compare",
            folder.path.display()
        );
        return Err(ExitCode::from(1));
    }
    let Some(plan) = a.checked.plan.clone() else {
        eprintln!("error: the {which} side has no plan");
        return Err(ExitCode::from(1));
    };
    Ok((a, plan))
}

/// Where the data of the impact comes from: the flags, else the `[run]`
/// table of the new side's relance.toml, else the old side's.
struct DataInputs {
    contacts: PathBuf,
    events: Option<PathBuf>,
    from: i64,
    until: i64,
    origin: crate::diff::impact::Origin,
}

fn data_inputs(
    args: &DiffArgs,
    old: &Analysed,
    new: &Analysed,
) -> Result<Option<DataInputs>, String> {
    if args.no_data {
        return Ok(None);
    }
    let with_data = [new, old]
        .into_iter()
        .find(|a| a.loaded.manifest.run.contacts.is_some());
    let (contacts, base, shown) = match (&args.contacts, with_data) {
        (Some(p), _) => (p.clone(), "base given", p.display().to_string()),
        (None, Some(a)) => {
            let rel = a.loaded.manifest.run.contacts.clone().unwrap_or_default();
            (
                super::manifest::under(&a.loaded.root, &rel),
                "sample base",
                rel,
            )
        }
        (None, None) => {
            if args.events.is_some() || args.from.is_some() || args.until.is_some() {
                return Err(
                    "`--events`, `--from` and `--until` need contacts: give `--contacts`, or set `contacts` under `[run]` in relance.toml".into(),
                );
            }
            return Ok(None);
        }
    };
    // The rest of the defaults come from the manifest that named the data.
    let m = with_data.filter(|_| args.contacts.is_none()).or(Some(new));
    let run = m.map(|a| &a.loaded.manifest.run);
    let (events, events_shown) = match (&args.events, run.and_then(|r| r.events.as_ref())) {
        (Some(p), _) => (Some(p.clone()), Some(p.display().to_string())),
        (None, Some(rel)) if args.contacts.is_none() => (
            m.map(|a| super::manifest::under(&a.loaded.root, rel)),
            Some(rel.clone()),
        ),
        _ => (None, None),
    };
    let missing = |flag: &str| {
        format!(
            "`--{flag}` is missing: the impact on data needs the window (give `--from` and `--until`, or set them under `[run]` in relance.toml)"
        )
    };
    let from = args
        .from
        .clone()
        .or_else(|| run.and_then(|r| r.from.clone()))
        .ok_or_else(|| missing("from"))?;
    let until = args
        .until
        .clone()
        .or_else(|| run.and_then(|r| r.until.clone()))
        .ok_or_else(|| missing("until"))?;
    let stamp = |flag: &str, s: &str| {
        crate::run::input::parse_timestamp(s).ok_or_else(|| {
            format!("`--{flag} {s}` is not an RFC 3339 timestamp such as 2026-01-15T09:00:00Z")
        })
    };
    let (from_s, until_s) = (stamp("from", &from)?, stamp("until", &until)?);
    if until_s <= from_s {
        return Err(format!(
            "the window is empty: `--until {until}` must be after `--from {from}`"
        ));
    }
    Ok(Some(DataInputs {
        contacts,
        events,
        from: from_s,
        until: until_s,
        origin: crate::diff::impact::Origin {
            base: base.to_string(),
            contacts_file: shown,
            events_file: events_shown,
        },
    }))
}

/// How many bad input lines are printed one by one.
const SHOWN_PROBLEMS: usize = 20;

/// The inputs read and typed by `plan`; bad lines not in `seen` printed.
fn read_inputs(
    d: &DataInputs,
    plan: &crate::plan::Plan,
    which: &str,
    seen: &mut std::collections::BTreeSet<String>,
) -> Result<(crate::run::Contacts, crate::run::Events), String> {
    use crate::run::input;
    super::load::check_run_input(&d.contacts, "contacts")?;
    if let Some(e) = &d.events {
        super::load::check_run_input(e, "events")?;
    }
    let (contacts, mut problems) = input::read_contacts(&d.contacts, plan)?;
    let (events, more) = match &d.events {
        Some(p) => input::read_events(p, plan, &contacts, super::threads())?,
        None => input::events_from_jsonl("", plan, &contacts, "-")?,
    };
    problems.extend(more);
    let fresh: Vec<String> = problems
        .iter()
        .map(|p| format!("{}: {p}", if p.skipped { "error" } else { "warning" }))
        .filter(|p| seen.insert(p.clone()))
        .collect();
    for p in fresh.iter().take(SHOWN_PROBLEMS) {
        eprintln!("{p} (the {which} side's schema)");
    }
    if fresh.len() > SHOWN_PROBLEMS {
        eprintln!(
            "… and {} more bad input line(s) for the {which} side",
            fresh.len() - SHOWN_PROBLEMS
        );
    }
    Ok((contacts, events))
}

/// The runs waiting at each of `steps` in the `relance serve` database at
/// `url`: `relance.contacts.waiting` holds one `STEP_ID` per active run.
fn waiting_runs(
    url: &str,
    steps: &[String],
) -> Result<std::collections::BTreeMap<String, u64>, String> {
    let mut client = postgres::Client::connect(url, postgres::NoTls)
        .map_err(|e| format!("`--database`: cannot connect to `{}`: {e}", shown_url(url)))?;
    let rows = client
        .query(
            "SELECT w, count(*) FROM relance.contacts CROSS JOIN LATERAL unnest(waiting) AS w \
             WHERE w = ANY($1) GROUP BY w",
            &[&steps],
        )
        .map_err(|e| {
            format!(
                "`--database`: cannot count the waiting runs in `relance.contacts` on `{}` (is it a `relance serve` database?): {}",
                shown_url(url),
                e.as_db_error().map_or(e.to_string(), |d| d.message().to_string())
            )
        })?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let step: String = r.get(0);
            let n: i64 = r.get(1);
            (step, n.max(0) as u64)
        })
        .collect())
}

/// A database URL without its password, for messages.
fn shown_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let auth = &url[s + 3..at];
            match auth.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

pub fn diff(args: DiffArgs) -> ExitCode {
    // Two revisions are written out at the same time (git's work is mostly
    // the kernel's: files created and written).
    let (old, new) = std::thread::scope(|s| {
        let new = s.spawn(|| folder(&args.new, "new", args.project.as_deref()));
        let old = folder(&args.old, "old", args.project.as_deref());
        let new = new
            .join()
            .unwrap_or_else(|_| Err("the new side could not be read".into()));
        (old, new)
    });
    let (old, new) = match (old, new) {
        (Ok(o), Ok(n)) => (o, n),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let Some(now) = project_now(&new.path, args.now.as_deref()) else {
        return ExitCode::from(2);
    };
    let mut cache = RenderCache::default();
    let old_side = side(&old, "old", now, args.color, None, &mut cache);
    let reuse = old_side.as_ref().ok().map(|(a, _)| a);
    let new_side = side(&new, "new", now, args.color, reuse, &mut cache);
    let ((oa, op), (na, np)) = match (old_side, new_side) {
        (Ok(o), Ok(n)) => (o, n),
        (Err(c), _) | (_, Err(c)) => return c,
    };
    let data = match data_inputs(&args, &oa, &na) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    // The changed templates are rendered for every persona on both sides.
    let mut old_side = crate::diff::Side::new(&oa.loaded.sources, &oa.checked.files, op, now);
    let mut new_side = crate::diff::Side::new(&na.loaded.sources, &na.checked.files, np, now);
    let templates = crate::diff::changed_templates(&old_side, &new_side);
    old_side.render(
        &oa.loaded.sources,
        &oa.checked.files,
        &templates,
        &mut cache,
    );
    new_side.render(
        &na.loaded.sources,
        &na.checked.files,
        &templates,
        &mut cache,
    );
    drop(cache);
    let mut d = crate::diff::diff(&old_side, &new_side);
    // Equal plans send the same messages: nothing to simulate.
    if let Some(data) = data.filter(|_| old_side.plan != new_side.plan) {
        let mut seen = std::collections::BTreeSet::new();
        let impact = read_inputs(&data, &new_side.plan, "new", &mut seen).and_then(|n| {
            let o = read_inputs(&data, &old_side.plan, "old", &mut seen)?;
            crate::diff::impact::data_impact(
                &old_side.plan,
                &new_side.plan,
                &crate::diff::impact::Inputs {
                    contacts: &o.0,
                    events: &o.1,
                },
                &crate::diff::impact::Inputs {
                    contacts: &n.0,
                    events: &n.1,
                },
                data.from,
                data.until,
                super::threads(),
                &d.changes,
                data.origin,
            )
        });
        match impact {
            Ok(i) => {
                d.impact.data = Some(i);
                d.add_admitted();
            }
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        }
    }
    if let Some(url) = &args.database {
        let steps: Vec<String> = crate::diff::impact::removed_steps(&old_side.plan, &new_side.plan)
            .into_iter()
            .map(|(id, ..)| id)
            .collect();
        match waiting_runs(url, &steps) {
            Ok(w) => d.add_waiting(&old_side.plan, &new_side.plan, &w),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let out = match args.format {
        DiffFormat::Human => {
            let text = crate::diff::human(&d);
            let color = match args.color {
                ColorArg::Always => true,
                ColorArg::Never => false,
                ColorArg::Auto => {
                    std::io::IsTerminal::is_terminal(&std::io::stdout())
                        && std::env::var_os("NO_COLOR").is_none()
                }
            };
            if color { colored(&text) } else { text }
        }
        DiffFormat::Markdown => crate::diff::markdown(&d),
        DiffFormat::Json => crate::diff::json(&d),
    };
    if std::io::stdout().write_all(out.as_bytes()).is_err() {
        return ExitCode::from(2);
    }
    ExitCode::from(if args.deny_risks && !d.risks.is_empty() {
        1
    } else {
        0
    })
}

/// The human report with ANSI colours: additions green, removals red,
/// changes and risks yellow.
fn colored(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 256);
    for line in text.lines() {
        let body = line.trim_start();
        let code = if body.starts_with("+ ") {
            Some("32")
        } else if body.starts_with("- ") {
            Some("31")
        } else if body.starts_with("~ ") {
            Some("33")
        } else if body.starts_with("warning[") {
            Some("1;33")
        } else {
            None
        };
        match code {
            Some(c) => out.push_str(&format!("\x1b[{c}m{line}\x1b[0m\n")),
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}
