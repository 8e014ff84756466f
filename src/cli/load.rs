//! Loading a project folder: every `*.camp` file below it, recursively,
//! skipping `build/`, `target/`, hidden folders, other projects (folders
//! with their own `relance.toml`) and what the manifest excludes, in a
//! stable order. Finding the project and reading its manifest is
//! `cli::manifest`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::manifest::{self, Manifest};
use crate::diagnostics::{Code, Diagnostic, Problems, SourceFile, SourceMap, Span};

/// A failure that stops the command (exit code 2).
#[derive(Debug)]
pub struct LoadError(pub String);

pub struct Loaded {
    pub root: PathBuf,
    pub sources: SourceMap,
    pub problems: Problems,
    /// The settings of the project's `relance.toml` (defaults without one).
    pub manifest: Manifest,
}

/// Reads the project of `path` (a folder, or a single `.camp` file): the
/// nearest folder at or above it with a `relance.toml`, or else the folder
/// (or file) itself. Folders holding their own `relance.toml` are other
/// projects and are skipped.
pub fn load_project(path: &Path) -> Result<Loaded, LoadError> {
    let located = manifest::locate(path)?;
    let (settings, _) = located.settings(&mut SourceMap::new());
    let root = located.root.clone();
    let mut files = match &located.single {
        None => {
            let mut files = Vec::new();
            let mut projects = Vec::new();
            walk(&root, &root, &settings, &mut files, &mut projects)?;
            if located.manifest.is_none() && !projects.is_empty() {
                return Err(LoadError(manifest::not_a_project(&root, &projects)));
            }
            files
        }
        Some(file) => {
            let name = file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            vec![(name, file.clone())]
        }
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
    let no_camp = sources.is_empty();
    // Added after the `.camp` files; not parsed as campaign source.
    let (manifest, manifest_problems) = located.settings(&mut sources);
    problems.extend(manifest_problems);
    if no_camp {
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
        manifest,
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

pub(super) fn io_reason(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "no such file or folder".to_string(),
        io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => e.to_string(),
    }
}

/// Collects the `.camp` files below `dir` that the manifest includes, and
/// the folders that hold their own `relance.toml` (other projects, skipped).
fn walk(
    root: &Path,
    dir: &Path,
    settings: &Manifest,
    out: &mut Vec<(String, PathBuf)>,
    projects: &mut Vec<String>,
) -> Result<(), LoadError> {
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
        let rel = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/");
        if ty.is_dir() {
            if name.starts_with('.')
                || name == "build"
                || name == "target"
                || settings.skips_folder(&rel)
            {
                continue;
            }
            if path.join(manifest::MANIFEST).is_file() {
                projects.push(rel);
                continue;
            }
            walk(root, &path, settings, out, projects)?;
        } else if name.ends_with(".camp") && !name.starts_with('.') && settings.includes(&rel) {
            // Symlinked files are read; symlinked folders are not followed.
            if ty.is_symlink() && fs::metadata(&path).map(|m| m.is_dir()).unwrap_or(false) {
                continue;
            }
            out.push((rel, path));
        }
    }
    Ok(())
}

/// Template files of a project: the bodies named by `file("…")` and the
/// partials under `templates/partials/`, by project-relative path.
#[derive(Debug, Default)]
pub struct TemplateFiles {
    pub contents: std::collections::BTreeMap<String, String>,
}

/// Reads every template file the ASTs name and every partial, adds them to
/// `sources` (so diagnostics can point into them) and reports missing files
/// and files outside the project (symbolic links resolved).
pub fn load_template_files(
    root: &Path,
    sources: &mut SourceMap,
    files: &[crate::syntax::ast::File],
    problems: &mut Problems,
) -> TemplateFiles {
    use crate::syntax::ast::{AttrValue, DeclKind};
    let mut out = TemplateFiles::default();
    let canonical_root = fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    let mut wanted: Vec<(String, String, Span)> = Vec::new();
    for f in files {
        let camp_path = sources.get(f.file).path.clone();
        for d in &f.decls {
            let DeclKind::Template(t) = &d.kind else {
                continue;
            };
            for a in &t.attrs {
                if let AttrValue::File(p) = &a.value.node {
                    wanted.push((camp_path.clone(), p.node.clone(), p.span));
                }
            }
        }
    }
    for (camp_path, written, span) in wanted {
        let Some(resolved) = crate::plan::resolve_template_path(&camp_path, &written) else {
            problems.push(
                Diagnostic::new(Code::E0507, format!("`{written}` is outside the project folder"))
                    .at(span, "outside the project")
                    .help("keep template files inside the project, e.g. under `templates/`; paths are relative to this `.camp` file's folder"),
            );
            continue;
        };
        if out.contents.contains_key(&resolved) {
            continue;
        }
        match read_inside(&canonical_root, root, &resolved) {
            Ok(text) => {
                sources.add(SourceFile::template(resolved.clone(), text.clone()));
                out.contents.insert(resolved, text);
            }
            Err(Refusal::Missing) => problems.push(
                Diagnostic::new(Code::E0506, format!("template file `{resolved}` does not exist"))
                    .at(span, "no such file")
                    .help("create the file or fix the path; paths are relative to the folder of this `.camp` file"),
            ),
            Err(Refusal::Outside) => problems.push(
                Diagnostic::new(Code::E0507, format!("`{resolved}` leads outside the project folder"))
                    .at(span, "resolves outside the project")
                    .help("a symbolic link points outside the project: copy the file into the project instead"),
            ),
            Err(Refusal::NotText) => problems.push(
                Diagnostic::new(Code::E0002, format!("template file `{resolved}` is not valid UTF-8"))
                    .at(span, "not UTF-8")
                    .help("save the template as UTF-8"),
            ),
        }
    }
    // Partials: every `templates/partials/**/*.hbs`, used as `{{> NAME}}`
    // (`{{> blocks/cta}}` for `templates/partials/blocks/cta.hbs`).
    for rel in partial_files(root) {
        if out.contents.contains_key(&rel) {
            continue;
        }
        // A partial that leads outside or cannot be read is left out;
        // a template using it then reports an unknown partial.
        if let Ok(text) = read_inside(&canonical_root, root, &rel) {
            sources.add(SourceFile::template(rel.clone(), text.clone()));
            out.contents.insert(rel, text);
        }
    }
    out
}

/// The project-relative paths of the `.hbs` files under
/// `templates/partials/` and its sub-folders (hidden entries and symbolic
/// links to folders skipped; at most 8 folders deep), sorted.
fn partial_files(root: &Path) -> Vec<String> {
    const MAX_DEPTH: usize = 8;
    let mut found = Vec::new();
    let mut stack = vec![("templates/partials".to_string(), 0)];
    while let Some((rel, depth)) = stack.pop() {
        let Ok(entries) = fs::read_dir(root.join(&rel)) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let path = format!("{rel}/{name}");
            match e.file_type() {
                Ok(t) if t.is_dir() && depth < MAX_DEPTH => stack.push((path, depth + 1)),
                Ok(t) if !t.is_dir() && name.ends_with(".hbs") => found.push(path),
                _ => {}
            }
        }
    }
    found.sort();
    found
}

enum Refusal {
    Missing,
    Outside,
    NotText,
}

fn read_inside(canonical_root: &Path, root: &Path, rel: &str) -> Result<String, Refusal> {
    let full = root.join(rel);
    let real = fs::canonicalize(&full).map_err(|_| Refusal::Missing)?;
    if !real.starts_with(canonical_root) {
        return Err(Refusal::Outside);
    }
    if !real.is_file() {
        return Err(Refusal::Missing);
    }
    let bytes = fs::read(&real).map_err(|_| Refusal::Missing)?;
    String::from_utf8(bytes).map_err(|_| Refusal::NotText)
}
