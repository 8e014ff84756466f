//! `relance diff OLD [NEW]`: load, check and plan both sides, then report
//! what will behave differently (`crate::diff`, `docs/diff.md`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, ValueEnum};

use super::{ColorArg, LoadError, analyse, human_style, project_now};
use crate::diagnostics::render;

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

/// A checked side with its plan, or the exit code after its problems
/// were printed.
fn side(
    folder: &Folder,
    which: &str,
    now: i64,
    color: ColorArg,
) -> Result<(super::Analysis, crate::plan::Plan), ExitCode> {
    let a = match analyse(&folder.path, now) {
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

pub fn diff(args: DiffArgs) -> ExitCode {
    let old = match folder(&args.old, "old", args.project.as_deref()) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let new = match folder(&args.new, "new", args.project.as_deref()) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let Some(now) = project_now(&new.path, args.now.as_deref()) else {
        return ExitCode::from(2);
    };
    let old_side = side(&old, "old", now, args.color);
    let new_side = side(&new, "new", now, args.color);
    let ((oa, op), (na, np)) = match (old_side, new_side) {
        (Ok(o), Ok(n)) => (o, n),
        (Err(c), _) | (_, Err(c)) => return c,
    };
    // The changed templates are rendered for every persona on both sides.
    let templates = crate::diff::changed_templates(&op, &np);
    let mut old_side = crate::diff::Side::new(&oa.loaded.sources, &oa.checked.files, op, now);
    old_side.render(&oa.loaded.sources, &oa.checked.files, &templates);
    let mut new_side = crate::diff::Side::new(&na.loaded.sources, &na.checked.files, np, now);
    new_side.render(&na.loaded.sources, &na.checked.files, &templates);
    let d = crate::diff::diff(&old_side, &new_side);
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
