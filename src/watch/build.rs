//! Incremental builds of one project: what `relance build` makes (the
//! diagnostics and the preview site), redoing only what changed since the
//! previous build.
//!
//! - Files are always read again from disk, so a build reflects the disk as
//!   it is, whatever events the watcher saw or missed.
//! - A `.camp` file is parsed again only when its text or its place in the
//!   project (its file id, i.e. its rank in path order) changed; spans hold
//!   file ids, so a parse is only valid at the same rank.
//! - The language checks, the plan and the persona checks run on the whole
//!   project every time (they are fast and cross-file).
//! - Template compilation, the per-persona template checks and the previews
//!   go through [`RenderCache`], which redoes a template only when a
//!   fingerprint of everything it depends on changed.
//!
//! The result equals a clean build's: `tests/watch_incremental.rs` compares
//! them after series of edits.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cli::{LoadError, load_project, load_template_files};
use crate::diagnostics::{Diagnostic, FileId, Problems, Severity, SourceMap};
use crate::driver;
use crate::render::{CacheStats, RenderCache};
use crate::syntax::ast;

/// The files the preview server serves, by path relative to the build
/// folder (`preview/index.html`), shared between builds.
pub type Site = crate::render::PreviewFiles;

/// Flow pages by path, shared with the sites that serve them.
type FlowPages = Vec<(String, Arc<Vec<u8>>)>;

/// One parsed `.camp` file, kept for the next build.
struct Parsed {
    id: FileId,
    readable: bool,
    text: Arc<str>,
    /// Taken out while a build uses it; `None` after a build failed midway.
    ast: Option<ast::File>,
    problems: Vec<Diagnostic>,
}

/// Builds one project again and again, reusing what did not change.
pub struct Builder {
    path: PathBuf,
    now: i64,
    parsed: HashMap<String, Parsed>,
    render: RenderCache,
    /// The flow pages of the last plan, with [`crate::render::flow_key`].
    flows: Option<(u64, FlowPages)>,
}

/// The result of one build.
pub struct Outcome {
    /// Every problem, sorted as `relance check` sorts them.
    pub diagnostics: Vec<Diagnostic>,
    /// The files the diagnostics point into.
    pub sources: SourceMap,
    /// How the user names the project folder, for paths in reports.
    pub prefix: String,
    /// The project folder, absolute (for links to the editor).
    pub root: PathBuf,
    /// The project could not be read at all (the folder is gone): why.
    pub load_error: Option<String>,
    /// The preview site, when the build had no error.
    pub site: Option<Site>,
    /// Project-relative paths (`/` separators) this build read or looked
    /// for: `.camp` files and template files, found or not.
    pub inputs: BTreeSet<String>,
    /// `.camp` files parsed this time (the others were reused).
    pub parsed: usize,
    /// What template work was redone.
    pub cache: CacheStats,
    pub elapsed: Duration,
}

impl Outcome {
    pub fn errors(&self) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.severity() == Severity::Error)
            .count()
            + usize::from(self.load_error.is_some())
    }

    pub fn warnings(&self) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.severity() == Severity::Warning)
            .count()
    }
}

impl Builder {
    /// The previews plus the flow pages, drawn again only when the plan's
    /// flows changed.
    fn site_files(&mut self, previews: Site, plan: &crate::plan::Plan) -> Site {
        let key = crate::render::flow_key(plan);
        if self.flows.as_ref().is_none_or(|(k, _)| *k != key) {
            let pages = crate::render::flow_pages(plan)
                .into_iter()
                .map(|(p, b)| (p, Arc::new(b)))
                .collect();
            self.flows = Some((key, pages));
        }
        let flows = self
            .flows
            .as_ref()
            .map(|(_, f)| f.as_slice())
            .unwrap_or(&[]);
        site_files_with(previews, flows)
    }

    /// A builder of the project at `path` (a folder, or one `.camp` file),
    /// with reference time `now` (unix seconds) for personas.
    pub fn new(path: &Path, now: i64) -> Builder {
        Builder {
            path: path.to_path_buf(),
            now,
            parsed: HashMap::new(),
            render: RenderCache::default(),
            flows: None,
        }
    }

    /// A builder of the same project with empty caches.
    pub fn fresh(&self) -> Builder {
        Builder::new(&self.path, self.now)
    }

    /// Reads the project from disk and builds it.
    pub fn build(&mut self) -> Outcome {
        let start = Instant::now();
        let mut loaded = match load_project(&self.path) {
            Ok(l) => l,
            Err(LoadError(message)) => return self.failed(message, start.elapsed()),
        };
        // The project's root (the nearest `relance.toml`, or the folder given).
        let prefix = self.prefix(&loaded.root);

        // Parse what changed.
        let misses: Vec<FileId> = loaded
            .sources
            .files()
            .filter(|(id, f)| match self.parsed.get(&f.path) {
                Some(p) => {
                    p.id != *id || p.readable != f.readable || p.text != f.text || p.ast.is_none()
                }
                None => true,
            })
            .map(|(id, _)| id)
            .collect();
        let threads = if misses.len() > 4 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            1
        };
        for (ast, problems) in driver::parse_files(&loaded.sources, &misses, threads) {
            let f = loaded.sources.get(ast.file);
            self.parsed.insert(
                f.path.clone(),
                Parsed {
                    id: ast.file,
                    readable: f.readable,
                    text: f.text.clone(),
                    problems: problems.iter().cloned().collect(),
                    ast: Some(ast),
                },
            );
        }
        let present: BTreeSet<&str> = loaded
            .sources
            .files()
            .map(|(_, f)| f.path.as_str())
            .collect();
        self.parsed
            .retain(|path, _| present.contains(path.as_str()));

        // The ASTs in file order, and their problems, as `parse_all` gives them.
        let mut files = Vec::with_capacity(loaded.sources.len());
        let mut problems = Problems::new();
        for (id, f) in loaded.sources.files() {
            let entry = self.parsed.get_mut(&f.path);
            let ast = entry.and_then(|p| {
                for d in &p.problems {
                    problems.push(d.clone());
                }
                p.ast.take()
            });
            files.push(ast.unwrap_or_else(|| ast::File {
                file: id,
                ..ast::File::default()
            }));
        }
        problems.extend(std::mem::take(&mut loaded.problems));
        let root = loaded.root.clone();
        let templates = load_template_files(&root, &mut loaded.sources, &files, &mut problems);
        let mut inputs: BTreeSet<String> = loaded
            .sources
            .files()
            .map(|(_, f)| f.path.clone())
            .collect();
        // Template files named but missing count too: creating one matters.
        for f in &files {
            let camp = &loaded.sources.get(f.file).path;
            for d in &f.decls {
                let ast::DeclKind::Template(t) = &d.kind else {
                    continue;
                };
                for a in t.attrs.iter().chain(t.variants.iter().map(|v| &v.attr)) {
                    if let ast::AttrValue::File(p) = &a.value.node {
                        inputs.extend(crate::plan::resolve_template_path(camp, &p.node));
                    }
                }
            }
        }

        // The previews are rendered beside the plan and the persona checks.
        let previews = |render: &crate::render::RenderProject, cache: &mut RenderCache| {
            render.previews_cached(cache)
        };
        let (checked, previews) = driver::check_parsed_cached(
            &loaded.sources,
            files,
            problems,
            &templates.contents,
            self.now,
            &mut self.render,
            Some(previews),
        );
        let errors = checked.errors();
        let driver::Checked {
            files,
            mut diagnostics,
            plan,
        } = checked;
        // The ASTs go back to the cache for the next build.
        for ast in files {
            let path = &loaded.sources.get(ast.file).path;
            if let Some(p) = self.parsed.get_mut(path) {
                p.ast = Some(ast);
            }
        }

        let mut site = None;
        if errors == 0
            && let (Some((previews, render_problems)), Some(plan)) = (previews, plan)
        {
            // As in `relance build`: a message that fails to render for
            // some persona's data refuses the build.
            let mut failures = Problems::new();
            for p in render_problems {
                failures.extend_one(p.into_diagnostic());
            }
            if failures.has_errors() {
                for d in diagnostics {
                    failures.push(d);
                }
                diagnostics = failures.into_sorted(&loaded.sources);
            } else {
                site = Some(self.site_files(previews, &plan));
            }
        }
        Outcome {
            diagnostics,
            sources: loaded.sources,
            prefix,
            root: std::path::absolute(&root).unwrap_or(root),
            load_error: None,
            site,
            inputs,
            parsed: misses.len(),
            cache: self.render.stats(),
            elapsed: start.elapsed(),
        }
    }

    /// The outcome of a build that could not read the project.
    pub fn failed(&self, message: String, elapsed: Duration) -> Outcome {
        Outcome {
            diagnostics: Vec::new(),
            sources: SourceMap::new(),
            prefix: self.prefix(&self.path),
            root: std::path::absolute(&self.path).unwrap_or_else(|_| self.path.clone()),
            load_error: Some(message),
            site: None,
            inputs: BTreeSet::new(),
            parsed: 0,
            cache: CacheStats::default(),
            elapsed,
        }
    }

    fn prefix(&self, path: &Path) -> String {
        path.to_string_lossy().replace('\\', "/")
    }
}

/// Everything `relance watch` serves, by path relative to the build folder
/// (as `relance build` writes it): the one place where build output is
/// gathered for the server. `plan.json` is left out (it is not a preview,
/// and making its JSON costs a few milliseconds on every build).
fn site_files_with(previews: Site, flows: &[(String, Arc<Vec<u8>>)]) -> Site {
    let mut files = previews;
    for (path, bytes) in flows {
        files.insert(path, bytes.clone());
    }
    files
}
