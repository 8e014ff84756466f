//! Loading a project folder: every `*.camp` file below it, recursively,
//! skipping `build/`, `target/` and hidden folders, in a stable order.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::diagnostics::{Code, Diagnostic, Problems, SourceFile, SourceMap, Span};

/// A failure that stops the command (exit code 2).
#[derive(Debug)]
pub struct LoadError(pub String);

pub struct Loaded {
    pub root: PathBuf,
    pub sources: SourceMap,
    pub problems: Problems,
}

/// Reads the project at `path` (a folder, or a single `.camp` file).
pub fn load_project(path: &Path) -> Result<Loaded, LoadError> {
    let meta = fs::metadata(path).map_err(|e| {
        LoadError(format!(
            "cannot read `{}`: {}",
            path.display(),
            io_reason(&e)
        ))
    })?;
    let (root, mut files) = if meta.is_dir() {
        let mut files = Vec::new();
        walk(path, path, &mut files)?;
        (path.to_path_buf(), files)
    } else {
        let root = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        (root, vec![(name, path.to_path_buf())])
    };
    files.sort();
    let mut sources = SourceMap::new();
    let mut problems = Problems::new();
    for (rel, full) in files {
        let bytes = fs::read(&full).map_err(|e| {
            LoadError(format!(
                "cannot read `{}`: {}",
                full.display(),
                io_reason(&e)
            ))
        })?;
        if let Some(nul) = bytes.iter().position(|&b| b == 0) {
            let (shown, at) = shown_up_to(&bytes, nul);
            let id = sources.add(SourceFile::unreadable(rel, shown));
            problems.push(
                Diagnostic::new(Code::E0006, "this file contains a NUL byte")
                    .at(Span::new(id, at, at + '\u{FFFD}'.len_utf8()), format!("NUL byte at offset {nul}"))
                    .help("campaign files are plain UTF-8 text; remove the byte or check that this is not a binary file"),
            );
            continue;
        }
        match String::from_utf8(bytes) {
            Ok(text) => {
                sources.add(SourceFile::new(rel, text));
            }
            Err(e) => {
                let bad = e.utf8_error().valid_up_to();
                let (shown, at) = shown_up_to(e.as_bytes(), bad);
                let id = sources.add(SourceFile::unreadable(rel, shown));
                problems.push(
                    Diagnostic::new(Code::E0002, "this file is not valid UTF-8")
                        .at(
                            Span::new(id, at, at + '\u{FFFD}'.len_utf8()),
                            format!("invalid byte at offset {bad}"),
                        )
                        .help("save the file as UTF-8 (most editors have an encoding option)"),
                );
            }
        }
    }
    if sources.is_empty() {
        problems.push(
            Diagnostic::new(
                Code::E0007,
                format!("no `.camp` files in `{}`", path.display()),
            )
            .help("point relance at the project folder, or create a file such as `campaign.camp`"),
        );
    }
    Ok(Loaded {
        root,
        sources,
        problems,
    })
}

/// The readable text before byte `bad` and the rest of its line, with the
/// bad byte shown as U+FFFD; returns the text and the offset of U+FFFD.
fn shown_up_to(bytes: &[u8], bad: usize) -> (String, usize) {
    let before = String::from_utf8_lossy(&bytes[..bad]);
    // Keep only whole lines before the bad one, plus that line.
    let mut shown = before.into_owned();
    let at = shown.len();
    shown.push('\u{FFFD}');
    let rest = &bytes[bad + 1..];
    let line_end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
    shown.push_str(&String::from_utf8_lossy(&rest[..line_end]).replace('\0', "\u{FFFD}"));
    (shown, at)
}

fn io_reason(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "no such file or folder".to_string(),
        io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => e.to_string(),
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) -> Result<(), LoadError> {
    let entries = fs::read_dir(dir).map_err(|e| {
        LoadError(format!(
            "cannot read folder `{}`: {}",
            dir.display(),
            io_reason(&e)
        ))
    })?;
    for entry in entries {
        let entry = entry.map_err(|e| {
            LoadError(format!(
                "cannot read folder `{}`: {}",
                dir.display(),
                io_reason(&e)
            ))
        })?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let ty = entry.file_type().map_err(|e| {
            LoadError(format!(
                "cannot read `{}`: {}",
                entry.path().display(),
                io_reason(&e)
            ))
        })?;
        let path = entry.path();
        if ty.is_dir() {
            if name.starts_with('.') || name == "build" || name == "target" {
                continue;
            }
            walk(root, &path, out)?;
        } else if name.ends_with(".camp") && !name.starts_with('.') {
            // Symlinked files are read; symlinked folders are not followed.
            if ty.is_symlink() && fs::metadata(&path).map(|m| m.is_dir()).unwrap_or(false) {
                continue;
            }
            let rel = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            out.push((rel, path));
        }
    }
    Ok(())
}
