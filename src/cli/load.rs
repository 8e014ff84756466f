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
use crate::syntax::MAX_FILE_BYTES;

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
        let bytes = match read_regular_file(&full, MAX_FILE_BYTES as u64) {
            Ok(bytes) => bytes,
            // The project given on the command line is one file it cannot read.
            Err(Unreadable::Io(e)) if located.single.is_some() => {
                return Err(LoadError(format!(
                    "cannot read `{}`: {}",
                    full.display(),
                    io_reason(&e)
                )));
            }
            // One file of a folder (a dangling symbolic link, no permission):
            // reported, and the rest is checked.
            Err(refusal) => {
                // Nothing of the file is shown: it was not read.
                let id = sources.add(SourceFile::unreadable(rel.clone(), ""));
                problems.push(refusal.diagnostic(&rel, Span::new(id, 0, 0), "campaign"));
                continue;
            }
        };
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
            // Per-locale variants (`html.en = file("…")`) name files too.
            for a in t.attrs.iter().chain(t.variants.iter().map(|v| &v.attr)) {
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
            Err(Refusal::Bad(why)) => problems.push(why.diagnostic(&resolved, span, "template")),
        }
    }
    // Partials: every `templates/partials/**/*.hbs`, used as `{{> NAME}}`
    // (`{{> blocks/cta}}` for `templates/partials/blocks/cta.hbs`).
    for rel in partial_files(root) {
        if out.contents.contains_key(&rel) {
            continue;
        }
        // A partial that leads outside or cannot be read is left out;
        // a template using it then reports an unknown partial. One that
        // is not a regular file or is too large is reported here.
        match read_inside(&canonical_root, root, &rel) {
            Ok(text) => {
                sources.add(SourceFile::template(rel.clone(), text.clone()));
                out.contents.insert(rel, text);
            }
            Err(Refusal::Bad(why)) => {
                let mut shown = SourceFile::unreadable(rel.clone(), "");
                shown.camp = false;
                let id = sources.add(shown);
                problems.push(why.diagnostic(&rel, Span::new(id, 0, 0), "partial"));
            }
            Err(_) => {}
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
    /// Not a regular file, or too large: read not even in part.
    Bad(Unreadable),
}

fn read_inside(canonical_root: &Path, root: &Path, rel: &str) -> Result<String, Refusal> {
    let full = root.join(rel);
    let real = fs::canonicalize(&full).map_err(|_| Refusal::Missing)?;
    if !real.starts_with(canonical_root) {
        return Err(Refusal::Outside);
    }
    let bytes = match read_regular_file(&real, MAX_FILE_BYTES as u64) {
        Ok(bytes) => bytes,
        Err(Unreadable::NotRegular("a folder")) => return Err(Refusal::Missing),
        Err(Unreadable::Io(e)) if e.kind() == io::ErrorKind::NotFound => {
            return Err(Refusal::Missing);
        }
        Err(why) => return Err(Refusal::Bad(why)),
    };
    String::from_utf8(bytes).map_err(|_| Refusal::NotText)
}

/// Why a project file was not read.
#[derive(Debug)]
pub enum Unreadable {
    /// Not a regular file once symbolic links are followed (a FIFO would
    /// block the read forever, `/dev/zero` never ends): what it is.
    NotRegular(&'static str),
    /// Larger than the limit (its size, or at least limit + 1 when it
    /// grew while being read).
    TooLarge { size: u64, limit: u64 },
    /// The system refused (missing, permission denied, …).
    Io(io::Error),
}

impl Unreadable {
    /// The diagnostic for the file at project path `rel`, placed at `span`
    /// (in the file itself, or where a `.camp` file names it); `what` is
    /// `campaign` or `template`.
    pub fn diagnostic(&self, rel: &str, span: Span, what: &str) -> Diagnostic {
        match self {
            Unreadable::NotRegular(kind) => Diagnostic::new(
                Code::E0910,
                format!("{what} file `{rel}` is {kind}, not a regular file"),
            )
            .at(span, "not read")
            .help(format!(
                "relance reads only regular files (a symbolic link must lead to one); replace `{rel}` with an ordinary file, or remove it"
            )),
            Unreadable::TooLarge { size, limit } => Diagnostic::new(
                Code::E0003,
                format!("{what} file `{rel}` is {size} bytes; the limit is {limit} bytes"),
            )
            .at(span, "not read")
            .help(if what == "campaign" {
                "split the campaign into several smaller `.camp` files".to_string()
            } else {
                format!("`{rel}` is far too large for a message: check that it is the right file")
            }),
            Unreadable::Io(e) => Diagnostic::new(
                Code::E0910,
                format!("cannot read {what} file `{rel}`: {}", io_reason(e)),
            )
            .at(span, "not read")
            .help(match e.kind() {
                io::ErrorKind::NotFound => format!(
                    "`{rel}` is a symbolic link that leads nowhere (or it was removed meanwhile): fix the link or remove it"
                ),
                io::ErrorKind::PermissionDenied => {
                    format!("give yourself read permission on `{rel}`, or remove it")
                }
                _ => format!("check `{rel}` (a symbolic link that loops?), or remove it"),
            }),
        }
    }
}

/// What a file that is not a regular file is, in words.
fn kind_of(ty: &fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ty.is_fifo() {
            return "a named pipe (FIFO)";
        }
        if ty.is_char_device() {
            return "a character device";
        }
        if ty.is_block_device() {
            return "a block device";
        }
        if ty.is_socket() {
            return "a socket";
        }
    }
    if ty.is_dir() {
        "a folder"
    } else {
        "a special file"
    }
}

/// Opens `path` for reading without ever blocking: opening a FIFO waits
/// for a writer, so a FIFO swapped in after the type check must not hang.
fn open_nonblocking(path: &Path) -> io::Result<fs::File> {
    let mut options = fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    options.open(path)
}

/// Reads a project file (a `.camp` file or a template) of at most `limit`
/// bytes. Only regular files are read, symbolic links followed: the type
/// and the size are checked before the read (a FIFO, `/dev/zero` or a
/// sparse file of gigabytes is refused without reading a byte), and the
/// read itself stops after `limit + 1` bytes in case the file grows.
pub fn read_regular_file(path: &Path, limit: u64) -> Result<Vec<u8>, Unreadable> {
    let meta = fs::metadata(path).map_err(Unreadable::Io)?;
    if !meta.is_file() {
        return Err(Unreadable::NotRegular(kind_of(&meta.file_type())));
    }
    if meta.len() > limit {
        return Err(Unreadable::TooLarge {
            size: meta.len(),
            limit,
        });
    }
    let file = open_nonblocking(path).map_err(Unreadable::Io)?;
    // The file may have been replaced between the two looks.
    let meta = file.metadata().map_err(Unreadable::Io)?;
    if !meta.is_file() {
        return Err(Unreadable::NotRegular(kind_of(&meta.file_type())));
    }
    if meta.len() > limit {
        return Err(Unreadable::TooLarge {
            size: meta.len(),
            limit,
        });
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    io::Read::read_to_end(&mut io::Read::take(file, limit + 1), &mut bytes)
        .map_err(Unreadable::Io)?;
    if bytes.len() as u64 > limit {
        return Err(Unreadable::TooLarge {
            size: bytes.len() as u64,
            limit,
        });
    }
    Ok(bytes)
}

/// Checks an input of `relance run` (`what`: "contacts", "events", …)
/// before it is opened. Unlike project files, input may stream from a pipe
/// (`--contacts /dev/stdin`, `<(zcat contacts.jsonl.gz)`): regular files
/// and FIFOs are accepted, and `/dev/null` (no input). Folders, sockets
/// and devices (`/dev/zero` never ends) are refused.
pub fn check_run_input(path: &Path, what: &str) -> Result<(), String> {
    let meta = fs::metadata(path)
        .map_err(|e| format!("cannot read {what} `{}`: {}", path.display(), io_reason(&e)))?;
    let ty = meta.file_type();
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ty.is_fifo() {
            return Ok(());
        }
        if ty.is_char_device() && fs::canonicalize(path).is_ok_and(|p| p == Path::new("/dev/null"))
        {
            return Ok(());
        }
    }
    if ty.is_file() {
        return Ok(());
    }
    Err(format!(
        "{what} `{}` is {}: give a file, or a pipe (`/dev/stdin` when the data is piped in)",
        path.display(),
        kind_of(&ty)
    ))
}

/// The whole text of an input of `relance run` read at once (the plan, the
/// engagement rates): checked as [`check_run_input`] does, and at most
/// `limit` bytes (a longer input is refused, not read to the end).
pub fn read_run_input(path: &Path, what: &str, limit: u64) -> Result<String, String> {
    check_run_input(path, what)?;
    let file = fs::File::open(path)
        .map_err(|e| format!("cannot read {what} `{}`: {}", path.display(), io_reason(&e)))?;
    let mut bytes = Vec::new();
    io::Read::read_to_end(&mut io::Read::take(file, limit + 1), &mut bytes)
        .map_err(|e| format!("cannot read {what} `{}`: {}", path.display(), io_reason(&e)))?;
    if bytes.len() as u64 > limit {
        return Err(format!(
            "{what} `{}` is larger than {} MiB: check that it is the right file",
            path.display(),
            limit >> 20
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "{what} `{}` is not valid UTF-8 (byte {})",
            path.display(),
            e.utf8_error().valid_up_to()
        )
    })
}
