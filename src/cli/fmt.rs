//! `relance fmt`: rewrites `*.camp` files in the canonical layout
//! (`crate::fmt`, `docs/fmt.md`). Files are replaced atomically (a
//! temporary file in the same folder, then a rename); a file that does not
//! parse is left as it is, with the diagnostics `relance check` prints.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::diagnostics::render;
use crate::diagnostics::{FileId, Problems, SourceFile, SourceMap, Span};
use crate::fmt::{FmtError, diff, format_text};
use crate::syntax::MAX_FILE_BYTES;

use super::ColorArg;
use super::load::read_regular_file;

#[derive(clap::Args, Debug)]
pub struct FmtArgs {
    /// Files and folders to format (folders: every `*.camp` file below,
    /// skipping hidden folders, `build/` and `target/`); default: the
    /// current folder. `-` reads standard input and writes the result to
    /// standard output.
    paths: Vec<PathBuf>,
    /// Write nothing: list the files that would change, exit with 1 if any.
    #[arg(long)]
    check: bool,
    /// Write nothing: print a unified diff of what would change, exit with
    /// 1 if anything would.
    #[arg(long)]
    diff: bool,
    /// Colours in the diagnostics: auto, always or never.
    #[arg(long, value_enum, default_value_t = ColorArg::Auto)]
    color: ColorArg,
}

/// What happened to one file.
enum Outcome {
    Unchanged,
    Changed {
        old: String,
        new: String,
    },
    /// Changed and written in place (by the worker that formatted it).
    Written,
    /// Diagnostics already rendered, or a message.
    Failed(String),
}

pub fn fmt(args: FmtArgs) -> ExitCode {
    let style = super::human_style(args.color);
    if args.paths.iter().any(|p| p.as_os_str() == "-") {
        if args.paths.len() > 1 {
            eprintln!("error: `-` (standard input) cannot be combined with other paths");
            return ExitCode::from(2);
        }
        return stdin(&args, style);
    }
    let paths = if args.paths.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        args.paths.clone()
    };
    let mut files = Vec::new();
    for path in &paths {
        if let Err(message) = collect(path, &mut files) {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    }
    files.sort();
    files.dedup();
    let write = !args.check && !args.diff;
    let outcomes = format_all(&files, style, write);
    let (mut failed, mut changed) = (false, false);
    let mut stdout = std::io::stdout().lock();
    for (path, outcome) in files.iter().zip(outcomes) {
        let shown = path.to_string_lossy().replace('\\', "/");
        match outcome {
            Outcome::Unchanged => {}
            Outcome::Written => changed = true,
            Outcome::Failed(report) => {
                failed = true;
                eprint!("{report}");
            }
            Outcome::Changed { old, new } => {
                changed = true;
                if args.check {
                    let _ = writeln!(stdout, "{shown}");
                }
                if args.diff {
                    let _ = stdout.write_all(diff::unified(&shown, &old, &new).as_bytes());
                }
            }
        }
    }
    if failed || (changed && !write) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// `relance fmt -`: standard input to standard output (for editors). On a
/// syntax error nothing is written to standard output.
fn stdin(args: &FmtArgs, style: render::HumanStyle) -> ExitCode {
    let mut bytes = Vec::new();
    if let Err(e) = std::io::stdin()
        .take(MAX_FILE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
    {
        eprintln!("error: cannot read standard input: {e}");
        return ExitCode::from(2);
    }
    let Ok(text) = String::from_utf8(bytes) else {
        eprintln!("error: standard input is not valid UTF-8");
        return ExitCode::from(1);
    };
    match format_one("<stdin>", &text, style) {
        Outcome::Failed(report) => {
            eprint!("{report}");
            ExitCode::from(1)
        }
        // Not produced for standard input (nothing is written in place).
        Outcome::Unchanged | Outcome::Written => {
            if !args.check && !args.diff {
                let _ = std::io::stdout().write_all(text.as_bytes());
            }
            ExitCode::SUCCESS
        }
        Outcome::Changed { old, new } => {
            let mut out = std::io::stdout().lock();
            if args.diff {
                let _ = out.write_all(diff::unified("<stdin>", &old, &new).as_bytes());
            } else if !args.check {
                let _ = out.write_all(new.as_bytes());
            }
            if args.check || args.diff {
                if args.check {
                    let _ = writeln!(out, "<stdin>");
                }
                return ExitCode::from(1);
            }
            ExitCode::SUCCESS
        }
    }
}

/// The `.camp` files of `path`: the file itself, or every one below a folder.
fn collect(path: &Path, files: &mut Vec<PathBuf>) -> Result<(), String> {
    let meta = fs::metadata(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    if meta.is_dir() {
        return walk(path, files);
    }
    if path.extension().is_none_or(|e| e != "camp") {
        return Err(format!(
            "`{}` is not a `.camp` file; `relance fmt` formats campaign files only",
            path.display()
        ));
    }
    files.push(path.to_path_buf());
    Ok(())
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), String> {
    let entries = fs::read_dir(dir).map_err(|e| format!("cannot read `{}`: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot read `{}`: {e}", dir.display()))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        // Symbolic links are not followed: a link may lead out of the tree.
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let path = if dir == Path::new(".") {
            PathBuf::from(&*name)
        } else {
            entry.path()
        };
        if kind.is_dir() {
            if !(name.starts_with('.') || name == "build" || name == "target") {
                walk(&path, files)?;
            }
        } else if kind.is_file() && name.ends_with(".camp") && !name.starts_with('.') {
            files.push(path);
        }
    }
    Ok(())
}

/// Formats the files on every core, and with `write` replaces each changed
/// one from the same thread (the writes cost as much as the formatting on a
/// raw project); one outcome per file, in order.
fn format_all(files: &[PathBuf], style: render::HumanStyle, write: bool) -> Vec<Outcome> {
    let threads = super::threads().clamp(1, 64).min(files.len().max(1));
    let mut slots: Vec<Option<Outcome>> = (0..files.len()).map(|_| None).collect();
    std::thread::scope(|s| {
        let jobs: Vec<_> = (0..threads)
            .map(|t| {
                std::thread::Builder::new()
                    // As the driver's parser threads: pest recurses.
                    .stack_size(64 * 1024 * 1024)
                    .spawn_scoped(s, move || {
                        (t..files.len())
                            .step_by(threads)
                            .map(|i| (i, format_path(&files[i], style, write)))
                            .collect::<Vec<_>>()
                    })
            })
            .collect();
        for job in jobs {
            match job {
                Ok(handle) => {
                    for (i, o) in handle.join().unwrap_or_default() {
                        slots[i] = Some(o);
                    }
                }
                Err(e) => eprintln!("error: cannot start a thread: {e}"),
            }
        }
    });
    slots
        .into_iter()
        .map(|o| {
            o.unwrap_or_else(|| Outcome::Failed("error: a file could not be formatted\n".into()))
        })
        .collect()
}

fn format_path(path: &Path, style: render::HumanStyle, write: bool) -> Outcome {
    let shown = path.to_string_lossy().replace('\\', "/");
    let bytes = match read_regular_file(path, MAX_FILE_BYTES as u64) {
        Ok(bytes) => bytes,
        Err(refusal) => {
            let mut sources = SourceMap::new();
            let id = sources.add(SourceFile::unreadable(shown.clone(), ""));
            let d = refusal.diagnostic(&shown, Span::new(id, 0, 0), "campaign");
            return Outcome::Failed(render::human(&[d], &sources, "", style));
        }
    };
    match String::from_utf8(bytes) {
        Ok(text) => match format_one(&shown, &text, style) {
            Outcome::Changed { new, .. } if write => match write_atomically(path, &new) {
                Ok(()) => Outcome::Written,
                Err(e) => Outcome::Failed(format!(
                    "error: cannot write `{shown}`: {e}; the file was left as it is\n"
                )),
            },
            outcome => outcome,
        },
        Err(_) => Outcome::Failed(format!(
            "error: `{shown}` is not valid UTF-8; it was left as it is (`relance check` shows where)\n"
        )),
    }
}

fn format_one(shown: &str, text: &str, style: render::HumanStyle) -> Outcome {
    match format_text(FileId(0), text) {
        Ok(new) if new == text => Outcome::Unchanged,
        Ok(new) => Outcome::Changed {
            old: text.to_string(),
            new,
        },
        Err(FmtError::Syntax(problems)) => Outcome::Failed(report(shown, text, problems, style)),
        Err(FmtError::Internal(why)) => Outcome::Failed(format!(
            "error: internal error: formatting `{shown}` would change its meaning ({why}); \
             the file was left as it is. Please report this with the file.\n"
        )),
    }
}

/// The diagnostics as `relance check` prints them.
fn report(shown: &str, text: &str, problems: Problems, style: render::HumanStyle) -> String {
    let mut sources = SourceMap::new();
    sources.add(SourceFile::new(shown.to_string(), text));
    let sorted = problems.into_sorted(&sources);
    render::human(&sorted, &sources, "", style)
}

/// Replaces `path` by `text`: written to a temporary file in the same
/// folder, then renamed over the original, so that an interrupted run
/// leaves either the old file or the new one, never a truncated one. A symbolic
/// link is kept: the file it points to is replaced.
fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let real = fs::canonicalize(path)?;
    let dir = real.parent().unwrap_or(Path::new("."));
    let name = real
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let permissions = fs::metadata(&real)?.permissions();
    let tmp = dir.join(format!(".{name}.relance-fmt-{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(text.as_bytes())?;
        // Not flushed to disk first (as gofmt and rustfmt): a thousand
        // `fsync`s cost seconds, and the rename keeps the file whole if
        // relance stops half-way.
        f.flush()?;
        fs::set_permissions(&tmp, permissions)?;
        fs::rename(&tmp, &real)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}
