//! Writes the synthetic benchmark project to disk.
//!
//! ```text
//! cargo run --release --example synth -- /tmp/synth [--files 1000] [--seed 42] [--json]
//! ```
//!
//! The same project as `cargo bench --bench check` measures (same seed, same
//! file count): one `schema.camp` plus one module file per product line.
//! With `--json`, also writes `json/<file>.json`, the same declarations as
//! JSON (used by the serde_json comparison).

#[path = "../benches/synth/mod.rs"]
mod synth;

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut dir: Option<PathBuf> = None;
    let mut files = synth::DEFAULT_FILES;
    let mut seed = synth::DEFAULT_SEED;
    let mut json = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--files" => match args.next().and_then(|v| v.parse().ok()) {
                Some(n) if n >= 1 => files = n,
                _ => return usage("--files takes a number >= 1"),
            },
            "--seed" => match args.next().and_then(|v| v.parse().ok()) {
                Some(n) => seed = n,
                None => return usage("--seed takes a number"),
            },
            "--json" => json = true,
            "-h" | "--help" => return usage(""),
            _ if dir.is_none() && !a.starts_with('-') => dir = Some(PathBuf::from(a)),
            _ => return usage(&format!("unexpected argument `{a}`")),
        }
    }
    let Some(dir) = dir else {
        return usage("missing the output folder");
    };
    // Writing over another project would mix two generations' files.
    if std::fs::read_dir(&dir).is_ok_and(|mut d| d.next().is_some()) {
        eprintln!(
            "error: `{}` is not empty; remove it or choose another folder",
            dir.display()
        );
        return ExitCode::from(2);
    }
    let project = synth::generate(seed, files);
    let (bytes, lines) = match synth::write_project(&dir, &project) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: cannot write to `{}`: {e}", dir.display());
            return ExitCode::from(2);
        }
    };
    if json {
        for f in &project {
            let path = dir.join("json").join(f.path.replace(".camp", ".json"));
            let text = serde_json::to_string_pretty(&f.json()).unwrap_or_default();
            if let Err(e) = path
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| std::fs::write(&path, text))
            {
                eprintln!("error: cannot write `{}`: {e}", path.display());
                return ExitCode::from(2);
            }
        }
    }
    eprintln!(
        "wrote {} files, {lines} lines, {bytes} bytes to {} (seed {seed})",
        project.len(),
        dir.display()
    );
    ExitCode::SUCCESS
}

fn usage(problem: &str) -> ExitCode {
    if !problem.is_empty() {
        eprintln!("error: {problem}");
    }
    eprintln!("usage: cargo run --release --example synth -- DIR [--files N] [--seed S] [--json]");
    ExitCode::from(if problem.is_empty() { 0 } else { 2 })
}
