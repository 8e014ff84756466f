//! One project as the language server sees it: the files on disk with the
//! editor's unsaved buffers laid over them, checked by the compiler's own
//! driver (`driver::check_parsed_cached`, as `relance check` and `relance
//! watch` do), again after every change.
//!
//! What a change does not affect is kept between analyses:
//! - the files read from disk (read again only after a save, an open or
//!   close, or a file event: `Project::mark_disk_stale`);
//! - the parse of every `.camp` file whose text and rank did not change
//!   (spans hold file ids, so a parse is only valid at the same rank);
//! - the template files, while no `file("…")` changed;
//! - compiled templates and their per-persona checks (`RenderCache`);
//! - every file's line index (`SourceFile` shares it between clones);
//! - the language checks' problems of every file ([`Parts`]).
//!
//! An analysis has two phases. The first, on the server's thread, reads,
//! parses and runs the language checks on what the change can affect
//! (`check::check_files`): the names, schema and events of the whole
//! project are collected again (duplicates are found there), but only the
//! declarations of the changed files, of the files that name anything
//! they declare or declared (a word of the file: a superset), of the
//! files of the cadences they start or started (a misspelt `start`
//! included: the cadence it meant is not "never started"), of the
//! scenarios that start those files' cadences, and the segments all of
//! these use, transitively, are checked again; the other files keep their
//! problems.
//! A change to a file that declares something of the whole project
//! (`workspace`, `contact`, `pressure`, `consent`, `topic`), a file with a
//! syntax error, files added or removed, or more than [`MAX_CHANGED`]
//! changed files check the whole project. What this phase cannot see
//! exactly — the help of "did you mean" once the suggestion budget is
//! spent, which back edge of a segment cycle running through unchanged
//! files is reported, the depth limit of segments that use a changed one
//! through other files, the first marketing SMS of a project without
//! `consent sms`, whether a channel is used at all (a warning on the
//! contact schema) — the second phase settles. Its diagnostics are published
//! at once, with those of the last full check that lie in files unchanged
//! since. The second, the full check of
//! `relance check` (`driver::check_parsed_cached`: templates, plan,
//! personas), runs on a worker thread ([`Job`]); its result replaces the
//! first phase's when it is still current. So the diagnostics shown
//! settle on exactly `relance check`'s.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::check;
use crate::cli::{LoadError, load_project, load_template_files, manifest};
use crate::diagnostics::{Diagnostic, FileId, Problems, SourceFile, SourceMap, Span};
use crate::driver;
use crate::render::{RenderCache, RenderProject};
use crate::syntax::ast;

/// One file as read, with its line index (shared: an analysis makes no
/// line index again for a file it did not change).
#[derive(Clone)]
struct Entry {
    file: SourceFile,
}

impl std::ops::Deref for Entry {
    type Target = SourceFile;
    fn deref(&self) -> &SourceFile {
        &self.file
    }
}

impl Entry {
    fn of(f: &SourceFile) -> Entry {
        Entry { file: f.clone() }
    }

    /// The file, or an editor's buffer over it (`cache`: the buffers'
    /// files of the last analysis, by path).
    fn source(&self, text: Option<&str>, cache: &mut HashMap<String, SourceFile>) -> SourceFile {
        let Some(t) = text else {
            return self.file.clone();
        };
        if self.file.readable && *self.file.text == *t {
            return self.file.clone();
        }
        if let Some(f) = cache.get(&self.path)
            && *f.text == *t
            && f.camp == self.camp
        {
            return f.clone();
        }
        let mut f = SourceFile::new(self.path.clone(), t);
        f.readable = true;
        f.camp = self.camp;
        cache.insert(self.path.clone(), f.clone());
        f
    }
}

/// The project as last read from disk.
struct Disk {
    entries: Vec<Entry>,
    problems: Vec<Diagnostic>,
}

/// The template files of the last analysis, valid while the `file("…")`
/// attributes (and their places) are the same and the disk was not read
/// again.
struct Templates {
    key: Vec<(String, String, Span)>,
    entries: Vec<Entry>,
    problems: Vec<Diagnostic>,
    contents: Arc<BTreeMap<String, String>>,
}

struct Parsed {
    id: FileId,
    text: Arc<str>,
    readable: bool,
    problems: Vec<Diagnostic>,
}

/// At most this many `.camp` files changed since the last analysis: the
/// language checks run again only on what they can affect.
const MAX_CHANGED: usize = 16;

/// What the language checks of the last analysis found, by file, so that
/// the next one checks again only the files an edit can affect.
struct Parts {
    /// The path of every file id (the parts hold for the same files at
    /// the same ids).
    paths: Vec<String>,
    /// Problems of the project as a whole (`check::check_files`).
    collected: Vec<Diagnostic>,
    /// Problems of the declarations, by the file of their primary place.
    by_file: Vec<Vec<Diagnostic>>,
    /// Problems of the declarations without a place.
    loose: Vec<Diagnostic>,
}

/// What a `.camp` file declares, as far as other files can see it.
struct Shape {
    names: Vec<String>,
    /// The cadences its scenarios start.
    starts: Vec<String>,
    /// Declares something of the whole project (`workspace`, `contact`,
    /// `pressure`, `consent`, `topic`), could not be read, or has a
    /// declaration with a syntax error: a change then re-checks all.
    global: bool,
}

impl Shape {
    fn of(f: &ast::File) -> Shape {
        let mut global = f.unreadable || !f.broken.is_empty();
        let mut names = Vec::new();
        let mut starts = Vec::new();
        for d in &f.decls {
            if let ast::DeclKind::Scenario(s) = &d.kind {
                starts_of(&s.steps, &mut starts);
            }
            match &d.kind {
                ast::DeclKind::Workspace(_)
                | ast::DeclKind::Contact(_)
                | ast::DeclKind::Pressure(_)
                | ast::DeclKind::Consent(_)
                | ast::DeclKind::Topic(_) => global = true,
                k => names.extend(k.name().map(|n| n.name.clone())),
            }
        }
        Shape {
            names,
            starts,
            global,
        }
    }
}

/// The cadences `start`ed in `steps`, at any depth.
fn starts_of(steps: &[ast::Step], out: &mut Vec<String>) {
    for step in steps {
        match &step.kind {
            ast::StepKind::Start(c) => out.push(c.name.clone()),
            ast::StepKind::Branch(arms) => {
                for a in arms {
                    starts_of(&a.steps, out);
                }
            }
            ast::StepKind::Split(arms) => {
                for a in arms {
                    starts_of(&a.steps, out);
                }
            }
            _ => {}
        }
    }
}

/// Every word of a text: a superset of the names a `.camp` file uses.
fn words_of(text: &str) -> HashSet<Box<str>> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .map(Box::from)
        .collect()
}

/// The result of one analysis.
#[derive(Default)]
pub struct Snapshot {
    pub sources: SourceMap,
    /// One per `.camp` file and the manifest, at its `FileId`.
    pub files: Vec<ast::File>,
    /// Every diagnostic, as `relance check` reports them.
    pub diagnostics: Vec<Diagnostic>,
    /// Project-relative path to file id.
    pub by_path: HashMap<String, FileId>,
    /// The project could not be read at all.
    pub load_error: Option<String>,
    /// Problems found before the language checks (reading, parsing,
    /// template files): the full check starts from them.
    base: Vec<Diagnostic>,
    /// The template files' texts (buffers over the disk).
    contents: Arc<BTreeMap<String, String>>,
    /// The first phase's diagnostics.
    front: Vec<Diagnostic>,
    /// `diagnostics` are the full check's.
    pub full: bool,
}

impl Snapshot {
    /// A project that could not be read or checked.
    pub fn failed(message: impl Into<String>) -> Snapshot {
        Snapshot {
            load_error: Some(message.into()),
            ..Snapshot::default()
        }
    }

    pub fn file_id(&self, rel: &str) -> Option<FileId> {
        self.by_path.get(rel).copied()
    }

    pub fn ast(&self, id: FileId) -> Option<&ast::File> {
        self.files.get(id.0 as usize).filter(|f| f.file == id)
    }
}

pub struct Project {
    pub root: PathBuf,
    now: i64,
    disk: Option<Disk>,
    templates: Option<Templates>,
    parsed: HashMap<String, Parsed>,
    /// `None` while a full check holds it.
    render: Option<RenderCache>,
    pub snap: Snapshot,
    /// The analysis is older than the buffers or the disk.
    pub dirty: bool,
    /// Generation of the snapshot, bumped by every analysis.
    pub generation: u64,
    /// The current generation wants a full check.
    full_wanted: bool,
    /// The full check running, if any.
    running: Option<Running>,
    /// What the last full check found beyond the first phase.
    later: Option<Later>,
    /// The language checks' problems of the last analysis, by file.
    parts: Option<Parts>,
    /// The words of each `.camp` file (by path), with the text they are of.
    words: HashMap<String, (Arc<str>, HashSet<Box<str>>)>,
    /// The files made of the editor's buffers in the last analysis.
    buffers: HashMap<String, SourceFile>,
    /// The last analysis re-checked only what its change could affect.
    narrowed: bool,
}

/// The texts a full check saw, by file id.
type Texts = Vec<(String, Arc<str>)>;

struct Running {
    generation: u64,
    texts: Texts,
    front: Vec<Diagnostic>,
}

struct Later {
    texts: Texts,
    diagnostics: Vec<Diagnostic>,
}

/// A full check to run on a worker thread: everything it needs, owned.
pub struct Job {
    pub root: PathBuf,
    generation: u64,
    entries: Vec<Entry>,
    files: Vec<ast::File>,
    base: Vec<Diagnostic>,
    contents: Arc<BTreeMap<String, String>>,
    now: i64,
    cache: RenderCache,
}

/// The result of a [`Job`].
pub struct Done {
    pub root: PathBuf,
    generation: u64,
    diagnostics: Option<Vec<Diagnostic>>,
    cache: RenderCache,
}

impl Job {
    /// The full check of `relance check`.
    pub fn run(self) -> Done {
        let Job {
            root,
            generation,
            entries,
            files,
            base,
            contents,
            now,
            mut cache,
        } = self;
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut sources = SourceMap::new();
            for e in entries {
                sources.add(e.file);
            }
            let mut problems = Problems::new();
            for d in base {
                problems.push(d);
            }
            let none = None::<fn(&RenderProject, &mut RenderCache)>;
            let (checked, _) = driver::check_parsed_cached(
                &sources, files, problems, &contents, now, &mut cache, none,
            );
            checked.diagnostics
        }));
        match outcome {
            Ok(diagnostics) => Done {
                root,
                generation,
                diagnostics: Some(diagnostics),
                cache,
            },
            // A bug: the first phase's diagnostics stay, the cache is new.
            Err(_) => Done {
                root,
                generation,
                diagnostics: None,
                cache: RenderCache::default(),
            },
        }
    }
}

fn texts(sources: &SourceMap) -> Texts {
    sources
        .files()
        .map(|(_, f)| (f.path.clone(), f.text.clone()))
        .collect()
}

/// The diagnostics of `full` that are not in `front` (as many times).
fn minus(full: &[Diagnostic], front: &[Diagnostic]) -> Vec<Diagnostic> {
    type Key = (crate::diagnostics::Code, String, Option<Span>);
    let key = |d: &Diagnostic| -> Key {
        (
            d.code,
            d.message.clone(),
            d.primary.as_ref().map(|l| l.span),
        )
    };
    let mut counts: HashMap<Key, usize> = HashMap::new();
    for d in front {
        *counts.entry(key(d)).or_default() += 1;
    }
    full.iter()
        .filter(|d| match counts.get_mut(&key(d)) {
            Some(n) if *n > 0 => {
                *n -= 1;
                false
            }
            _ => true,
        })
        .cloned()
        .collect()
}

/// The first phase's diagnostics with those of the last full check that
/// lie wholly in files unchanged since (notes about skipped checks left
/// out: they follow errors the first phase reports afresh).
fn merged(front: &[Diagnostic], later: Option<&Later>, sources: &SourceMap) -> Vec<Diagnostic> {
    let mut all = Problems::new();
    for d in front {
        all.push(d.clone());
    }
    if let Some(later) = later
        && later.texts.len() == sources.len()
    {
        let same: Vec<bool> = later
            .texts
            .iter()
            .zip(sources.files())
            .map(|((p, t), (_, f))| *p == f.path && (Arc::ptr_eq(t, &f.text) || **t == *f.text))
            .collect();
        for d in &later.diagnostics {
            let unchanged = d
                .primary
                .iter()
                .chain(&d.secondary)
                .all(|l| same.get(l.span.file.0 as usize).copied().unwrap_or(false));
            if unchanged && d.code != crate::diagnostics::Code::W0910 {
                all.push(d.clone());
            }
        }
    }
    all.into_sorted(sources)
}

/// The reference time of a project: the `now` of its `relance.toml`, else
/// the time the server started (fixed, so diagnostics do not drift).
fn project_now(root: &Path, started: i64) -> i64 {
    manifest::locate(root)
        .ok()
        .and_then(|l| l.settings(&mut SourceMap::new()).0.now.map(|(t, _)| t))
        .unwrap_or(started)
}

/// The root of the project a file belongs to: the nearest folder at or
/// above it with a `relance.toml`; else the innermost workspace folder
/// holding it, when that folder is one project (`is_project`); else the
/// file's folder.
pub fn root_of(
    file: &Path,
    workspace_folders: &[PathBuf],
    mut is_project: impl FnMut(&Path) -> bool,
) -> PathBuf {
    let dir = file.parent().unwrap_or(Path::new("/")).to_path_buf();
    let mut d = Some(dir.as_path());
    while let Some(x) = d {
        if x.join(manifest::MANIFEST).is_file() {
            return x.to_path_buf();
        }
        d = x.parent();
    }
    let best = workspace_folders
        .iter()
        .filter(|w| file.starts_with(w))
        .max_by_key(|w| w.components().count());
    match best {
        Some(w) if is_project(w) => w.clone(),
        _ => dir,
    }
}

/// Whether a folder without a manifest is one project (not a folder of
/// several, which `load_project` refuses).
pub fn is_project(dir: &Path) -> bool {
    load_project(dir).is_ok()
}

impl Project {
    pub fn new(root: PathBuf, started: i64) -> Project {
        let now = project_now(&root, started);
        Project {
            root,
            now,
            disk: None,
            templates: None,
            parsed: HashMap::new(),
            render: Some(RenderCache::default()),
            snap: Snapshot::default(),
            dirty: true,
            generation: 0,
            full_wanted: false,
            running: None,
            later: None,
            parts: None,
            words: HashMap::new(),
            buffers: HashMap::new(),
            narrowed: false,
        }
    }

    /// The disk will be read again at the next analysis.
    pub fn mark_disk_stale(&mut self) {
        self.disk = None;
        self.templates = None;
        self.dirty = true;
    }

    /// The project-relative path of `path`, when it lies inside the project.
    pub fn relative(&self, path: &Path) -> Option<String> {
        let rel = path.strip_prefix(&self.root).ok()?;
        let parts: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        (!parts.is_empty()).then(|| parts.join("/"))
    }

    /// Checks the project with `overlays` (absolute path → unsaved text)
    /// laid over the disk.
    pub fn analyze(&mut self, overlays: &HashMap<PathBuf, String>) {
        self.dirty = false;
        self.generation += 1;
        if self.disk.is_none() {
            match load_project(&self.root) {
                Ok(loaded) => {
                    self.disk = Some(Disk {
                        entries: loaded.sources.files().map(|(_, f)| Entry::of(f)).collect(),
                        problems: loaded.problems.iter().cloned().collect(),
                    });
                    self.templates = None;
                }
                Err(LoadError(message)) => {
                    self.snap = Snapshot {
                        load_error: Some(message),
                        ..Snapshot::default()
                    };
                    self.parts = None;
                    return;
                }
            }
        }
        let Some(disk) = &self.disk else { return };
        let root = &self.root;
        let overlay = |rel: &str| overlays.get(&root.join(rel)).map(String::as_str);
        let buffers = &mut self.buffers;

        let mut sources = SourceMap::new();
        let mut overlaid = Vec::new();
        for e in &disk.entries {
            let text = if e.camp { overlay(&e.path) } else { None };
            let id = sources.add(e.source(text, buffers));
            if text.is_some() {
                overlaid.push(id);
            }
        }
        // Reading problems of a file the editor holds are about the disk.
        let mut problems = Problems::new();
        for d in &disk.problems {
            let about_overlaid = d
                .primary
                .as_ref()
                .is_some_and(|l| overlaid.contains(&l.span.file));
            if !about_overlaid {
                problems.push(d.clone());
            }
        }

        // Parse what changed; reuse the other ASTs of the last analysis.
        let mut previous = std::mem::take(&mut self.snap.files);
        let mut files: Vec<ast::File> = Vec::with_capacity(sources.len());
        let mut misses = Vec::new();
        for (id, f) in sources.files() {
            let hit = self
                .parsed
                .get(&f.path)
                .is_some_and(|p| p.id == id && p.readable == f.readable && p.text == f.text)
                && previous.get(id.0 as usize).is_some_and(|a| a.file == id);
            if hit {
                files.push(std::mem::take(&mut previous[id.0 as usize]));
            } else {
                misses.push(id);
                files.push(ast::File {
                    file: id,
                    ..ast::File::default()
                });
            }
        }
        // What the changed files declared before (`None`: not known).
        let before: Vec<Option<Shape>> = if misses.len() <= MAX_CHANGED {
            misses
                .iter()
                .map(|id| {
                    previous
                        .get(id.0 as usize)
                        .filter(|a| a.file == *id)
                        .map(Shape::of)
                })
                .collect()
        } else {
            Vec::new()
        };
        drop(previous);
        let threads = if misses.len() > 4 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            1
        };
        for (ast, p) in driver::parse_files(&sources, &misses, threads) {
            let f = sources.get(ast.file);
            self.parsed.insert(
                f.path.clone(),
                Parsed {
                    id: ast.file,
                    text: f.text.clone(),
                    readable: f.readable,
                    problems: p.iter().cloned().collect(),
                },
            );
            let i = ast.file.0 as usize;
            files[i] = ast;
        }
        self.parsed
            .retain(|path, p| sources.len() > p.id.0 as usize && sources.get(p.id).path == *path);
        for (_, f) in sources.files() {
            if let Some(p) = self.parsed.get(&f.path) {
                for d in &p.problems {
                    problems.push(d.clone());
                }
            }
        }

        // Template files: read again only when a `file("…")` changed.
        let key = template_key(&sources, &files);
        let reuse = self.templates.as_ref().is_some_and(|t| t.key == key);
        if !reuse {
            let before = sources.len();
            let mut found = Problems::new();
            let t = load_template_files(root, &mut sources, &files, &mut found);
            let entries = sources
                .files()
                .skip(before)
                .map(|(_, f)| Entry::of(f))
                .collect();
            self.templates = Some(Templates {
                key,
                entries,
                problems: found.iter().cloned().collect(),
                contents: Arc::new(t.contents),
            });
            // Rebuilt below with the overlays.
            let mut again = SourceMap::new();
            for (i, (_, f)) in sources.files().enumerate() {
                if i < before {
                    again.add(f.clone());
                }
            }
            sources = again;
        }
        let Some(templates) = &self.templates else {
            return;
        };
        let mut contents = templates.contents.clone();
        for e in &templates.entries {
            let text = overlay(&e.path);
            if let Some(t) = text
                && contents.contains_key(&e.path)
            {
                Arc::make_mut(&mut contents).insert(e.path.clone(), t.to_string());
            }
            sources.add(e.source(text, buffers));
        }
        for d in &templates.problems {
            problems.push(d.clone());
        }
        buffers.retain(|path, _| overlay(path).is_some());

        // The first phase: the language checks of what the change can
        // affect (all of it the first time, or when in doubt).
        let base: Vec<Diagnostic> = problems.iter().cloned().collect();
        let same_files = self.parts.as_ref().is_some_and(|p| {
            p.paths.len() == sources.len()
                && p.paths
                    .iter()
                    .zip(sources.files())
                    .all(|(a, (_, f))| *a == f.path)
        });
        let narrow = same_files
            && before.len() == misses.len()
            && before.iter().zip(&misses).all(|(b, id)| {
                b.as_ref().is_some_and(|b| !b.global) && !Shape::of(&files[id.0 as usize]).global
            });
        let words = &mut self.words;
        if !same_files {
            let camp: HashSet<&str> = sources
                .files()
                .filter(|(_, f)| f.camp)
                .map(|(_, f)| f.path.as_str())
                .collect();
            words.retain(|path, _| camp.contains(path.as_str()));
        }
        for (_, f) in sources.files().filter(|(_, f)| f.camp) {
            let fresh = words.get(&f.path).is_some_and(|(t, _)| *t == f.text);
            if !fresh {
                words.insert(f.path.clone(), (f.text.clone(), words_of(&f.text)));
            }
        }
        self.narrowed = narrow && self.parts.is_some();
        let parts = match self.parts.take() {
            Some(old) if narrow => {
                let mut names: HashSet<&str> = HashSet::new();
                for (b, id) in before.iter().zip(&misses) {
                    names.extend(b.iter().flat_map(|b| b.names.iter().map(String::as_str)));
                    names.extend(
                        files[id.0 as usize]
                            .decls
                            .iter()
                            .filter_map(|d| d.kind.name())
                            .map(|n| n.name.as_str()),
                    );
                }
                let uses = |f: &SourceFile, names: &HashSet<&str>| {
                    f.camp
                        && words
                            .get(&f.path)
                            .is_some_and(|(_, w)| names.iter().any(|n| w.contains(*n)))
                };
                // The changed files and every file that names what they
                // declared (or used to).
                let mut owned = vec![false; sources.len()];
                for id in &misses {
                    owned[id.0 as usize] = true;
                }
                for (id, f) in sources.files() {
                    if !owned[id.0 as usize] && uses(f, &names) {
                        owned[id.0 as usize] = true;
                    }
                }
                // The cadences the changed files start or started (a
                // cadence never started is reported on the cadence).
                // A misspelt `start` counts: the cadence it meant is not
                // reported as never started.
                let after: Vec<Shape> = misses
                    .iter()
                    .map(|id| Shape::of(&files[id.0 as usize]))
                    .collect();
                let started: Vec<&str> = before
                    .iter()
                    .flatten()
                    .chain(&after)
                    .flat_map(|b| b.starts.iter().map(String::as_str))
                    .collect();
                let named = |n: &str| {
                    started
                        .iter()
                        .any(|s| *s == n || crate::diagnostics::did_you_mean(s, [n]).is_some())
                };
                for f in &files {
                    let i = f.file.0 as usize;
                    if i < owned.len()
                        && !owned[i]
                        && f.decls.iter().any(
                            |d| matches!(&d.kind, ast::DeclKind::Cadence(c) if named(&c.name.name)),
                        )
                    {
                        owned[i] = true;
                    }
                }
                // Plus the scenarios that start their cadences.
                let cadences: HashSet<&str> = files
                    .iter()
                    .filter(|f| owned.get(f.file.0 as usize).copied().unwrap_or(false))
                    .flat_map(|f| &f.decls)
                    .filter_map(|d| match &d.kind {
                        ast::DeclKind::Cadence(c) => Some(c.name.name.as_str()),
                        _ => None,
                    })
                    .collect();
                let mut scope = owned.clone();
                if !cadences.is_empty() {
                    for (id, f) in sources.files() {
                        if uses(f, &cadences) {
                            scope[id.0 as usize] = true;
                        }
                    }
                }
                let mut collected = Problems::new();
                let mut found = Problems::new();
                check::check_files(&sources, &files, &scope, &mut collected, &mut found);
                let mut by_file = old.by_file;
                for (i, o) in owned.iter().enumerate() {
                    if *o {
                        by_file[i].clear();
                    }
                }
                for d in found.iter() {
                    if let Some(l) = &d.primary
                        && owned.get(l.span.file.0 as usize).copied().unwrap_or(false)
                    {
                        by_file[l.span.file.0 as usize].push(d.clone());
                    }
                }
                Parts {
                    paths: old.paths,
                    collected: collected.iter().cloned().collect(),
                    by_file,
                    loose: old.loose,
                }
            }
            _ => {
                let scope = vec![true; sources.len()];
                let mut collected = Problems::new();
                let mut found = Problems::new();
                check::check_files(&sources, &files, &scope, &mut collected, &mut found);
                let mut by_file = vec![Vec::new(); sources.len()];
                let mut loose = Vec::new();
                for d in found.iter() {
                    match &d.primary {
                        Some(l) if (l.span.file.0 as usize) < by_file.len() => {
                            by_file[l.span.file.0 as usize].push(d.clone())
                        }
                        _ => loose.push(d.clone()),
                    }
                }
                Parts {
                    paths: sources.files().map(|(_, f)| f.path.clone()).collect(),
                    collected: collected.iter().cloned().collect(),
                    by_file,
                    loose,
                }
            }
        };
        let mut all = Problems::new();
        for d in base
            .iter()
            .chain(&parts.collected)
            .chain(parts.by_file.iter().flatten())
            .chain(&parts.loose)
        {
            all.push(d.clone());
        }
        self.parts = Some(parts);
        let front = all.into_sorted(&sources);
        let diagnostics = merged(&front, self.later.as_ref(), &sources);
        let by_path = if same_files {
            std::mem::take(&mut self.snap.by_path)
        } else {
            sources
                .files()
                .map(|(id, f)| (f.path.clone(), id))
                .collect()
        };
        self.snap = Snapshot {
            sources,
            files,
            diagnostics,
            by_path,
            load_error: None,
            base,
            contents,
            front,
            full: false,
        };
        self.full_wanted = true;
    }

    /// The full check the current analysis wants, when none is running.
    pub fn job(&mut self) -> Option<Job> {
        if !self.full_wanted || self.running.is_some() || self.snap.load_error.is_some() {
            return None;
        }
        let cache = self.render.take()?;
        self.full_wanted = false;
        let snap = &self.snap;
        self.running = Some(Running {
            generation: self.generation,
            texts: texts(&snap.sources),
            front: snap.front.clone(),
        });
        Some(Job {
            root: self.root.clone(),
            generation: self.generation,
            entries: snap.sources.files().map(|(_, f)| Entry::of(f)).collect(),
            files: snap.files.clone(),
            base: snap.base.clone(),
            contents: snap.contents.clone(),
            now: self.now,
            cache,
        })
    }

    /// Takes a full check's result; true when the diagnostics changed.
    pub fn done(&mut self, done: Done) -> bool {
        self.render = Some(done.cache);
        let Some(run) = self.running.take() else {
            return false;
        };
        let Some(full) = done.diagnostics else {
            return false;
        };
        self.later = Some(Later {
            texts: run.texts,
            diagnostics: minus(&full, &run.front),
        });
        if run.generation == self.generation && done.generation == self.generation {
            self.snap.diagnostics = full;
            self.snap.full = true;
        } else {
            let d = merged(&self.snap.front, self.later.as_ref(), &self.snap.sources);
            if d == self.snap.diagnostics {
                return false;
            }
            self.snap.diagnostics = d;
        }
        true
    }
}

/// The `file("…")` attributes of every template, with their places.
fn template_key(sources: &SourceMap, files: &[ast::File]) -> Vec<(String, String, Span)> {
    let mut key = Vec::new();
    for f in files {
        let camp = &sources.get(f.file).path;
        for d in &f.decls {
            let ast::DeclKind::Template(t) = &d.kind else {
                continue;
            };
            for a in t.attrs.iter().chain(t.variants.iter().map(|v| &v.attr)) {
                if let ast::AttrValue::File(p) = &a.value.node {
                    key.push((camp.clone(), p.node.clone(), p.span));
                }
            }
        }
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_is_the_nearest_manifest_else_the_folder() {
        let t = std::env::temp_dir().join(format!("relance-lsp-root-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&t);
        std::fs::create_dir_all(t.join("p/sub/deeper")).unwrap();
        std::fs::create_dir_all(t.join("loose/x")).unwrap();
        std::fs::write(t.join("p").join(manifest::MANIFEST), "").unwrap();
        let ws = [t.clone()];
        // The nearest `relance.toml` upward, whatever the workspace says.
        let f = t.join("p/sub/deeper/a.camp");
        assert_eq!(root_of(&f, &ws, |_| true), t.join("p"));
        // No manifest: the workspace folder when it is one project…
        let f = t.join("loose/x/a.camp");
        assert_eq!(root_of(&f, &ws, |_| true), t);
        // …else the file's own folder.
        assert_eq!(root_of(&f, &ws, |_| false), t.join("loose/x"));
        assert_eq!(root_of(&f, &[], |_| true), t.join("loose/x"));
        let _ = std::fs::remove_dir_all(&t);
    }

    fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                copy_dir(&e.path(), &to.join(e.file_name()));
            } else {
                std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
            }
        }
    }

    /// The first phase's diagnostics, in a comparable form.
    fn front(p: &Project) -> Vec<String> {
        let mut v: Vec<String> = p.snap.front.iter().map(|d| format!("{d:?}")).collect();
        v.sort();
        v
    }

    #[test]
    fn edits_across_files_are_checked_as_from_scratch() {
        let t = std::env::temp_dir().join(format!("relance-lsp-incr-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&t);
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        copy_dir(&repo.join("campaigns"), &t);
        let t = std::fs::canonicalize(&t).unwrap();
        let read = |f: &str| std::fs::read_to_string(t.join(f)).unwrap();
        let mut p = Project::new(t.clone(), 0);
        let mut overlays: HashMap<PathBuf, String> = HashMap::new();
        p.analyze(&overlays);
        assert!(!p.narrowed, "the first analysis checks everything");
        assert!(p.snap.load_error.is_none());
        // Each step: (file, text) laid over the disk (`None`: back to the
        // disk), whether the project then has errors, whether only what
        // the change can affect is checked again.
        type Step = (&'static str, Box<dyn Fn(&str) -> String>, bool, bool);
        let steps: Vec<Step> = vec![
            // A comment no longer names the scenario that starts the
            // cadence (so that only the `start` links the two files).
            (
                "cadences.camp",
                Box::new(|s| {
                    s.replace(
                        "started by the `fleet_leads` scenario",
                        "started by a scenario",
                    )
                }),
                false,
                true,
            ),
            // A segment renamed: personas.camp and other segments use it.
            (
                "segments.camp",
                Box::new(|s| s.replace("segment engaged =", "segment engagedd =")),
                true,
                true,
            ),
            // Another file follows the new name (one use left broken).
            (
                "personas.camp",
                Box::new(|s| s.replacen("expect engaged", "expect engagedd", 1)),
                true,
                true,
            ),
            // A misspelt cadence: unknown (the cadence is not also
            // reported as never started).
            (
                "scenarios.camp",
                Box::new(|s| s.replace("start fleet_followup", "start fleet_followupp")),
                true,
                true,
            ),
            // The cadence's start removed: never started, in another file.
            (
                "scenarios.camp",
                Box::new(|s| s.replace("start fleet_followup", "tag \"fleet\"")),
                true,
                true,
            ),
            // The same name declared in two files.
            (
                "templates.camp",
                Box::new(|s| format!("{s}\nsegment marketable = country in [\"FR\"]\n")),
                true,
                true,
            ),
            // A template's channel changed under the scenarios that send it.
            (
                "templates.camp",
                Box::new(|s| s.replace("template offer : email {", "template offer : sms {")),
                true,
                true,
            ),
            // A syntax error: everything is checked again.
            (
                "segments.camp",
                Box::new(|s| s.replace("segment cold =", "segment cold = and and")),
                true,
                false,
            ),
            // Everything back as on disk.
            ("segments.camp", Box::new(|s| s.to_string()), true, false),
            ("personas.camp", Box::new(|s| s.to_string()), true, true),
            ("scenarios.camp", Box::new(|s| s.to_string()), true, true),
            ("templates.camp", Box::new(|s| s.to_string()), false, true),
        ];
        for (i, (file, edit, errors, narrowed)) in steps.iter().enumerate() {
            let path = t.join(file);
            let base = read(file);
            overlays.insert(path, edit(&base));
            p.analyze(&overlays);
            let mut scratch = Project::new(t.clone(), 0);
            scratch.analyze(&overlays);
            assert!(!scratch.narrowed);
            assert_eq!(front(&p), front(&scratch), "step {i} ({file})");
            if i == 4 {
                assert!(
                    front(&p).iter().any(|d| d.contains("W0701")),
                    "{:?}",
                    front(&p)
                );
            }
            assert_eq!(p.narrowed, *narrowed, "step {i} ({file})");
            let has_errors = p
                .snap
                .front
                .iter()
                .any(|d| d.severity() == crate::diagnostics::Severity::Error);
            assert_eq!(has_errors, *errors, "step {i} ({file}): {:?}", front(&p));
        }
        let _ = std::fs::remove_dir_all(&t);
    }
}
