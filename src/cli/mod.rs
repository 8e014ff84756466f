//! The command line: the only place that touches files and the terminal.

mod diff;
mod load;
pub mod manifest;
mod out;
mod run;
mod segments;
mod serve;
mod sql;
mod watch;
// `relance fmt` (issue 12).
mod fmt;
// `relance lsp` (issue 12).
mod lsp;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::diagnostics::ci;
use crate::diagnostics::render::{self, Format, HumanStyle};
use crate::diagnostics::{Code, Severity};
use crate::driver;

pub use load::{LoadError, Loaded, TemplateFiles, load_project, load_template_files};

#[derive(Parser, Debug)]
#[command(
    name = "relance",
    version = crate::tzdb::version_text(),
    about = "Campaign-as-code compiler: check, build and run marketing automation"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Parse and check every `*.camp` file of a project and report all problems.
    Check {
        /// The project folder (or one `.camp` file).
        #[arg(default_value = ".")]
        path: PathBuf,
        /// Output format: human (stderr), json, github (workflow commands,
        /// and a job summary when GITHUB_STEP_SUMMARY is set) or sarif
        /// (SARIF 2.1.0).
        #[arg(long, value_enum, default_value_t = FormatArg::Human)]
        format: FormatArg,
        /// Exit with status 1 when there are warnings, too.
        #[arg(long)]
        deny_warnings: bool,
        /// Colours in human output: auto (when the output is a terminal), always or never.
        #[arg(long, value_enum, default_value_t = ColorArg::Auto)]
        color: ColorArg,
        /// Reference time for personas' `expect` lines and relative times,
        /// as RFC 3339 (`2026-01-15T09:00:00Z`); default: the current time.
        #[arg(long)]
        now: Option<String>,
    },
    /// Check a project, then write its executable plan (and previews) to a folder.
    Build {
        /// The project folder.
        #[arg(default_value = ".")]
        path: PathBuf,
        /// Output folder (default: the `build` folder of relance.toml, or
        /// PROJECT/build).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Reference time for personas' relative times (`40d ago`), as
        /// RFC 3339 (`2026-01-15T09:00:00Z`); default: the current time.
        #[arg(long)]
        now: Option<String>,
        /// Colours in the diagnostics: auto, always or never.
        #[arg(long, value_enum, default_value_t = ColorArg::Auto)]
        color: ColorArg,
    },
    /// Render one template for one persona and print it.
    Render {
        /// The template's name.
        template: String,
        /// The persona whose data fills the template.
        #[arg(long)]
        persona: String,
        /// The project folder.
        #[arg(default_value = ".")]
        path: PathBuf,
        /// `text` (readable, the default), `json` (every part, sorted keys),
        /// `context` (the render context the template sees, as JSON) or
        /// `eml` (the email as MIME, dated `--now`).
        #[arg(long, value_enum, default_value_t = RenderFormat::Text)]
        format: RenderFormat,
        /// Reference time for the persona's relative times (RFC 3339).
        #[arg(long)]
        now: Option<String>,
        /// Colours in the diagnostics: auto, always or never.
        #[arg(long, value_enum, default_value_t = ColorArg::Auto)]
        color: ColorArg,
    },
    /// Build a project, serve its previews on 127.0.0.1 and rebuild on every change.
    Watch(watch::WatchArgs),
    /// Run a built plan against contacts and events: a deterministic
    /// simulation that writes the outbox (what would be sent, when, why).
    Run(run::RunArgs),
    /// Run a built plan for real: contacts, events and the ledger in
    /// PostgreSQL, messages delivered through SMTP and HTTP, an HTTP API.
    Serve(serve::ServeArgs),
    /// Print the SQL that computes every segment's membership as of a
    /// timestamp parameter (or, with `--schema`, the canonical tables' DDL).
    Sql(sql::SqlArgs),
    /// Count each segment's members as of an instant, in process or on PostgreSQL.
    Segments(segments::SegmentsArgs),
    /// Create the canonical tables in PostgreSQL and load contacts and events into them.
    Load(segments::LoadArgs),
    /// Compare two projects (folders or git revisions): what will behave
    /// differently, and what is risky (`docs/diff.md`).
    Diff(diff::DiffArgs),
    /// Explain a diagnostic code, with a wrong and a right example, or a
    /// risk code of `relance diff` (R01xx).
    Explain {
        /// A code such as `E0201`, `W0601` or `R0101`; `--list` shows them all.
        code: Option<String>,
        /// List every code with its title.
        #[arg(long)]
        list: bool,
    },
    /// Rewrite `*.camp` files in the one canonical layout (like gofmt; no options).
    Fmt(fmt::FmtArgs),
    /// Run the language server (LSP 3.17) on standard input and output, for editors.
    Lsp(lsp::LspArgs),
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum FormatArg {
    Human,
    Json,
    Github,
    Sarif,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum RenderFormat {
    Text,
    Json,
    /// The render context the template sees for the persona, as JSON (what
    /// a JavaScript runner gives handlebars.js; links in declaration order).
    Context,
    /// The email as MIME, as `relance serve` would send it (docs/delivery.md).
    Eml,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum ColorArg {
    Auto,
    Always,
    Never,
}

/// Runs the command line; returns the process exit code (0, 1 or 2 as in §11).
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match cli.command {
        Command::Check {
            path,
            format,
            deny_warnings,
            color,
            now,
        } => match project_now(&path, now.as_deref()) {
            Some(now) => check(path, format, deny_warnings, color, now),
            None => ExitCode::from(2),
        },
        Command::Build {
            path,
            out,
            now,
            color,
        } => build(path, out, now, color),
        Command::Render {
            template,
            persona,
            path,
            format,
            now,
            color,
        } => match project_now(&path, now.as_deref()) {
            Some(now) => render_one(&path, &template, &persona, format, now, color),
            None => ExitCode::from(2),
        },
        Command::Watch(args) => watch::watch(args),
        Command::Run(args) => run::run(args, threads()),
        Command::Serve(args) => serve::serve(args),
        Command::Diff(args) => diff::diff(args),
        Command::Sql(args) => sql::sql(args),
        Command::Segments(args) => segments::segments(args),
        Command::Load(args) => segments::load(args),
        Command::Explain { code, list } => explain(code, list),
        Command::Fmt(args) => fmt::fmt(args),
        Command::Lsp(args) => lsp::lsp(args),
    }
}

fn threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// A loaded, parsed and checked project, with its template files: what
/// `relance check` and `relance build` both start from.
pub struct Analysis {
    pub loaded: Loaded,
    pub checked: driver::Checked,
    pub templates: TemplateFiles,
    /// How the user names the project folder, for paths in reports.
    pub prefix: String,
}

/// Loads, parses and checks the project at `path`, template files included.
pub fn analyse(path: &std::path::Path, now: i64) -> Result<Analysis, LoadError> {
    let mut loaded = load_project(path)?;
    let (files, mut problems) = driver::parse_all(&loaded.sources, threads());
    problems.extend(std::mem::take(&mut loaded.problems));
    let templates = load_template_files(&loaded.root, &mut loaded.sources, &files, &mut problems);
    let checked = driver::check_parsed(&loaded.sources, files, problems, &templates.contents, now);
    // The project's root as the user names it (`campaigns`, `..`).
    let prefix = loaded.root.to_string_lossy().replace('\\', "/");
    Ok(Analysis {
        loaded,
        checked,
        templates,
        prefix,
    })
}

fn human_style(color: ColorArg) -> HumanStyle {
    let is_tty = std::io::stderr().is_terminal();
    HumanStyle {
        color: match color {
            ColorArg::Always => true,
            ColorArg::Never => false,
            ColorArg::Auto => is_tty && std::env::var_os("NO_COLOR").is_none(),
        },
        unicode: true,
        width: 100,
    }
}

/// `--now`, else the `now` of the project's `relance.toml`, else the
/// current time; `None` (after a message) when `--now` is malformed.
fn project_now(path: &std::path::Path, now: Option<&str>) -> Option<i64> {
    if now.is_some() {
        return parse_now(now);
    }
    let from_manifest = manifest::locate(path).ok().and_then(|l| {
        l.settings(&mut crate::diagnostics::SourceMap::new())
            .0
            .now
            .map(|(t, _)| t)
    });
    from_manifest.or_else(|| parse_now(None))
}

/// `--now`, or the current time; `None` (after a message) when malformed.
fn parse_now(now: Option<&str>) -> Option<i64> {
    match now.map(str::parse::<jiff::Timestamp>) {
        None => Some(jiff::Timestamp::now().as_second()),
        Some(Ok(t)) => Some(t.as_second()),
        Some(Err(_)) => {
            eprintln!("error: `--now` takes an RFC 3339 timestamp such as 2026-01-15T09:00:00Z");
            None
        }
    }
}

fn build(path: PathBuf, out: Option<PathBuf>, now: Option<String>, color: ColorArg) -> ExitCode {
    let Some(now) = project_now(&path, now.as_deref()) else {
        return ExitCode::from(2);
    };
    let a = match analyse(&path, now) {
        Ok(a) => a,
        Err(LoadError(message)) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    let _ = now;
    if !a.checked.diagnostics.is_empty() {
        eprint!(
            "{}",
            render::human(
                &a.checked.diagnostics,
                &a.loaded.sources,
                &a.prefix,
                human_style(color)
            )
        );
    }
    if a.checked.errors() > 0 {
        eprintln!("build refused: fix the errors above first");
        return ExitCode::from(1);
    }
    let sources = &a.loaded.sources;
    // Built during the checks (errors were ruled out above).
    let Some(plan) = &a.checked.plan else {
        return ExitCode::from(1);
    };
    let render = crate::render::RenderProject::new(
        sources,
        &a.checked.files,
        &driver::template_file_ids(sources),
        now,
    );
    // Check renders only headers and SMS bodies for every persona; the
    // full render may still fail for some persona's data (E0517).
    render.init_facts(sources, &a.checked.files, now);
    let (mut previews, render_problems) = render.previews();
    previews.extend(crate::render::flow_pages(plan));
    let mut failures = crate::diagnostics::Problems::new();
    for p in render_problems {
        failures.extend_one(p.into_diagnostic());
    }
    if failures.has_errors() {
        let failures = failures.into_sorted(sources);
        eprint!(
            "{}",
            render::human(&failures, sources, &a.prefix, human_style(color))
        );
        eprintln!("build refused: fix the errors above first");
        return ExitCode::from(1);
    }
    let out = out.unwrap_or_else(|| manifest::under(&a.loaded.root, a.loaded.manifest.build_dir()));
    match out::write_build(&out, &plan.to_json(), &previews) {
        Ok(()) => {}
        Err(out::OutError::Refused(message)) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
        Err(out::OutError::Io(e)) => {
            eprintln!("error: cannot write to `{}`: {e}", out.display());
            return ExitCode::from(2);
        }
    }
    eprintln!(
        "built {} scenario(s), {} cadence(s), {} template(s), {} preview file(s) into {}",
        plan.scenarios.len(),
        plan.cadences.len(),
        plan.templates.len(),
        previews.len(),
        out.display()
    );
    ExitCode::SUCCESS
}

fn render_one(
    path: &std::path::Path,
    template: &str,
    persona: &str,
    format: RenderFormat,
    now: i64,
    color: ColorArg,
) -> ExitCode {
    let a = match analyse(path, now) {
        Ok(a) => a,
        Err(LoadError(message)) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    let sources = &a.loaded.sources;
    if a.checked.errors() > 0 {
        eprint!(
            "{}",
            render::human(
                &a.checked.diagnostics,
                sources,
                &a.prefix,
                human_style(color)
            )
        );
        eprintln!("cannot render: fix the errors above first");
        return ExitCode::from(1);
    }
    let project = crate::render::RenderProject::new(
        sources,
        &a.checked.files,
        &driver::template_file_ids(sources),
        now,
    );
    if format == RenderFormat::Context
        && let Some(inputs) = project.handlebars_inputs(template, persona)
    {
        println!("{}", inputs.context);
        return ExitCode::SUCCESS;
    }
    if format == RenderFormat::Eml {
        let plan = a.checked.plan.as_ref();
        let eml = plan.ok_or_else(|| "the project has no plan".to_string());
        let eml = eml
            .and_then(|p| crate::deliver::email::persona_eml(&project, p, template, persona, now));
        return match eml.map(|bytes| std::io::stdout().write_all(&bytes)) {
            Ok(Ok(())) => ExitCode::SUCCESS,
            Ok(Err(_)) => ExitCode::from(2),
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(1)
            }
        };
    }
    match project.render_one(template, persona) {
        Ok(message) => {
            match format {
                RenderFormat::Text => print!("{message}"),
                RenderFormat::Eml => {}
                RenderFormat::Json | RenderFormat::Context => {
                    println!("{}", message.to_json_string())
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

fn check(
    path: PathBuf,
    format: FormatArg,
    deny_warnings: bool,
    color: ColorArg,
    now: i64,
) -> ExitCode {
    let a = match analyse(&path, now) {
        Ok(a) => a,
        Err(LoadError(message)) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    let (loaded, checked, prefix) = (&a.loaded, &a.checked, &a.prefix);
    let ds = &checked.diagnostics;
    let format = match format {
        FormatArg::Human => Format::Human,
        FormatArg::Json => Format::Json,
        FormatArg::Github => Format::Github,
        FormatArg::Sarif => {
            let out = ci::sarif(ds, &loaded.sources, prefix);
            if std::io::stdout().write_all(out.as_bytes()).is_err() {
                return ExitCode::from(2);
            }
            return check_status(ds, deny_warnings);
        }
    };
    let out = match format {
        Format::Human => render::human(
            &checked.diagnostics,
            &loaded.sources,
            prefix,
            human_style(color),
        ),
        Format::Json => render::json(&checked.diagnostics, &loaded.sources),
        Format::Github => {
            // GitHub shows 10 annotations of each severity: the job summary
            // lists them all.
            let summary = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty());
            if let Some(path) = &summary {
                let table = ci::github_summary(ds, &loaded.sources, prefix);
                let appended = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .and_then(|mut f| f.write_all(table.as_bytes()));
                if let Err(e) = appended {
                    eprintln!(
                        "error: cannot append the job summary to {} (GITHUB_STEP_SUMMARY): {e}",
                        PathBuf::from(path).display()
                    );
                    return ExitCode::from(2);
                }
            }
            let lines = render::github(ds, &loaded.sources, prefix);
            ci::github_annotations(&lines, ds, summary.is_some())
        }
    };
    // Human reports go to stderr like a compiler's; machine formats to stdout.
    let written = match format {
        Format::Human => std::io::stderr().write_all(out.as_bytes()),
        _ => std::io::stdout().write_all(out.as_bytes()),
    };
    if written.is_err() {
        return ExitCode::from(2);
    }
    check_status(ds, deny_warnings)
}

/// 1 when there are errors (or warnings, with `--deny-warnings`), else 0.
fn check_status(diagnostics: &[crate::diagnostics::Diagnostic], deny_warnings: bool) -> ExitCode {
    let failed = diagnostics
        .iter()
        .any(|d| d.severity() == Severity::Error || deny_warnings);
    ExitCode::from(if failed { 1 } else { 0 })
}

fn explain(code: Option<String>, list: bool) -> ExitCode {
    if list || code.is_none() {
        for c in Code::ALL {
            println!("{}  {}", c, c.title());
        }
        // The risk codes of `relance diff`, after the diagnostics.
        for r in crate::diff::RiskCode::ALL {
            println!("{}  {}", r, r.title());
        }
        return ExitCode::SUCCESS;
    }
    let code = code.unwrap_or_default();
    // The risk codes of `relance diff` (R01xx).
    if let Some(r) = crate::diff::RiskCode::parse(&code) {
        print!("{}", r.explanation());
        return ExitCode::SUCCESS;
    }
    match Code::parse(&code) {
        Some(c) => {
            print!("{}", c.explanation());
            ExitCode::SUCCESS
        }
        None => {
            let all: Vec<&str> = Code::ALL
                .iter()
                .map(|c| c.as_str())
                .chain(crate::diff::RiskCode::ALL.iter().map(|r| r.as_str()))
                .collect();
            // A code of the same letter first: `R0110` is a risk code mistyped,
            // not `E0110`.
            let upper = code.to_ascii_uppercase();
            let same_letter = all
                .iter()
                .copied()
                .filter(|c| upper.chars().next() == c.chars().next());
            let hint = crate::diagnostics::did_you_mean(&upper, same_letter)
                .or_else(|| crate::diagnostics::did_you_mean(&upper, all))
                .map(|c| format!(" (did you mean `{c}`?)"))
                .unwrap_or_default();
            eprintln!(
                "error: `{code}` is not a relance diagnostic or risk code{hint}; `relance explain --list` shows them all"
            );
            ExitCode::from(2)
        }
    }
}
