//! `relance lsp`: a Language Server (LSP 3.17) over standard input and
//! output, on the compiler itself (`docs/editors.md`).
//!
//! Synchronous, as rust-analyzer's transport (`lsp-server`): one thread
//! reads messages, this one handles them in order. Edits only mark their
//! project dirty; a project is analysed again when no message is waiting
//! (so edits that arrive together cost one analysis) or when a request
//! needs the current state, and its diagnostics are published for every file of
//! the project (empty lists for files whose problems went away). The full
//! check (`project::Job`) starts on the worker once no message came for
//! [`QUIET`] after an analysis.
//!
//! - `project`: the files, the unsaved buffers over them, the analysis;
//! - `index`: every name and where it is written;
//! - `features`: hover, definition, references, rename, completion,
//!   symbols, formatting, code actions, semantic tokens, folding;
//! - `convert`: offsets against LSP positions, diagnostics.

mod complete;
mod convert;
mod features;
mod index;
mod project;

use std::collections::{BTreeSet, HashMap};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lsp_server::{Connection, ErrorCode, Message, Notification, Request, Response};
use lsp_types::{
    DidChangeTextDocumentParams, DidCloseTextDocumentParams, DidOpenTextDocumentParams,
    DidSaveTextDocumentParams, InitializeParams, PositionEncodingKind, PublishDiagnosticsParams,
    Url,
};
use serde_json::{Value, json};

pub use convert::Encoding;
use index::Index;
use project::Project;

/// A stack as roomy as the parser's: the checker recurses on nesting.
const SERVER_STACK: usize = 256 * 1024 * 1024;

/// How long the input stays quiet before the full check starts.
const QUIET: Duration = Duration::from_millis(100);

/// Runs the server on standard input and output until `exit`; the exit
/// status follows the protocol (1 when `exit` came without `shutdown`).
pub fn run() -> Result<(), String> {
    let (connection, io) = Connection::stdio();
    let outcome = std::thread::Builder::new()
        .name("relance-lsp".into())
        .stack_size(SERVER_STACK)
        .spawn(move || serve(connection))
        .map_err(|e| format!("cannot start the server thread: {e}"))?
        .join()
        .unwrap_or_else(|_| Err("the server stopped on an internal error".into()));
    outcome?;
    io.join()
        .map_err(|e| format!("standard input or output failed: {e}"))
}

fn serve(connection: Connection) -> Result<(), String> {
    let (id, params) = connection
        .initialize_start()
        .map_err(|e| format!("initialize: {e}"))?;
    let params: InitializeParams =
        serde_json::from_value(params).map_err(|e| format!("initialize: bad parameters: {e}"))?;
    let encoding = negotiate(&params);
    let result = json!({
        "capabilities": features::capabilities(encoding),
        "serverInfo": { "name": "relance", "version": env!("CARGO_PKG_VERSION") },
    });
    connection
        .initialize_finish(id, result)
        .map_err(|e| format!("initialize: {e}"))?;
    // Full checks run on one worker thread, one after the other.
    let (done_tx, done_rx) = crossbeam_channel::unbounded::<project::Done>();
    let (job_tx, job_rx) = crossbeam_channel::unbounded::<project::Job>();
    let worker = std::thread::Builder::new()
        .name("relance-lsp-check".into())
        .stack_size(SERVER_STACK)
        .spawn(move || {
            for job in job_rx {
                if done_tx.send(job.run()).is_err() {
                    break;
                }
            }
        });
    let (done_rx, job_tx) = match worker {
        Ok(_) => (done_rx, Some(job_tx)),
        Err(_) => (crossbeam_channel::never(), None),
    };
    let mut server = Server::new(&connection, &params, encoding, job_tx);
    // The transport's channel has no buffer: a message is waiting when
    // `try_recv` gets one, and then the analysis waits for it.
    let mut next: Option<Message> = None;
    // When the full checks wanted start: once no message came for
    // `QUIET` after the last analysis (the first phase's diagnostics are
    // on their way meanwhile, and a burst of edits costs one full check).
    let mut jobs_due: Option<Instant> = None;
    loop {
        let wait = jobs_due.map_or(Duration::from_secs(3600), |t| {
            t.saturating_duration_since(Instant::now())
        });
        let msg = match next.take() {
            Some(m) => m,
            None => crossbeam_channel::select! {
                recv(connection.receiver) -> m => match m {
                    Ok(m) => m,
                    Err(_) => return Ok(()),
                },
                recv(done_rx) -> d => {
                    if let Ok(d) = d {
                        server.done(d);
                    }
                    server.start_jobs();
                    continue;
                }
                default(wait) => {
                    if jobs_due.take().is_some() {
                        server.start_jobs();
                    }
                    continue;
                }
            },
        };
        match msg {
            Message::Request(req) => {
                match connection.handle_shutdown(&req) {
                    Ok(true) => return Ok(()),
                    Ok(false) => {}
                    Err(e) => return Err(format!("shutdown: {e}")),
                }
                server.request(req);
            }
            Message::Notification(n) => {
                if n.method == "exit" {
                    // `exit` without `shutdown`.
                    return Err("exit before shutdown".into());
                }
                server.notification(n);
            }
            Message::Response(_) => {}
        }
        match connection.receiver.try_recv() {
            Ok(m) => next = Some(m),
            Err(_) => {
                server.flush();
                jobs_due = Some(Instant::now() + QUIET);
            }
        }
    }
}

/// UTF-8 columns when the client offers them (LSP 3.17), else UTF-16.
fn negotiate(params: &InitializeParams) -> Encoding {
    let offered = params
        .capabilities
        .general
        .as_ref()
        .and_then(|g| g.position_encodings.as_ref());
    match offered {
        Some(list) if list.contains(&PositionEncodingKind::UTF8) => Encoding::Utf8,
        _ => Encoding::Utf16,
    }
}

/// An open document.
pub(crate) struct Doc {
    pub text: String,
    pub version: i32,
}

pub(crate) struct Server<'c> {
    connection: &'c Connection,
    pub encoding: Encoding,
    /// Workspace folders, absolute.
    folders: Vec<PathBuf>,
    /// Open documents by absolute path.
    pub docs: HashMap<PathBuf, Doc>,
    /// Unsaved texts by absolute path (the open documents' texts).
    overlays: HashMap<PathBuf, String>,
    /// The project root of each file asked about.
    roots: HashMap<PathBuf, PathBuf>,
    /// Whether each workspace folder (without a manifest) is one project.
    folder_is_project: HashMap<PathBuf, bool>,
    /// Projects by root.
    pub projects: HashMap<PathBuf, Project>,
    /// The index of each project's current analysis (by generation).
    indexes: HashMap<PathBuf, (u64, Index)>,
    /// Files of each project that have diagnostics published.
    published: HashMap<PathBuf, BTreeSet<PathBuf>>,
    /// `initializationOptions.explainBaseUrl`.
    explain_base: Option<String>,
    started: i64,
    /// The worker that runs full checks (`None`: they run on this thread).
    jobs: Option<crossbeam_channel::Sender<project::Job>>,
}

impl<'c> Server<'c> {
    fn new(
        connection: &'c Connection,
        params: &InitializeParams,
        encoding: Encoding,
        jobs: Option<crossbeam_channel::Sender<project::Job>>,
    ) -> Server<'c> {
        let mut folders: Vec<PathBuf> = params
            .workspace_folders
            .iter()
            .flatten()
            .filter_map(|f| convert::path_of(&f.uri))
            .collect();
        #[allow(deprecated)]
        if folders.is_empty()
            && let Some(root) = params.root_uri.as_ref().and_then(convert::path_of)
        {
            folders.push(root);
        }
        let folders = folders.into_iter().map(|f| canonical(&f)).collect();
        let explain_base = params
            .initialization_options
            .as_ref()
            .and_then(|o| o.get("explainBaseUrl"))
            .and_then(Value::as_str)
            .map(str::to_string);
        Server {
            connection,
            encoding,
            folders,
            docs: HashMap::new(),
            overlays: HashMap::new(),
            roots: HashMap::new(),
            folder_is_project: HashMap::new(),
            projects: HashMap::new(),
            indexes: HashMap::new(),
            published: HashMap::new(),
            explain_base,
            started: jiff::Timestamp::now().as_second(),
            jobs,
        }
    }

    fn send(&self, msg: impl Into<Message>) {
        let _ = self.connection.sender.send(msg.into());
    }

    fn notify(&self, method: &str, params: impl serde::Serialize) {
        self.send(Notification::new(method.to_string(), params));
    }

    fn log(&self, message: String) {
        self.notify(
            "window/logMessage",
            json!({ "type": 3, "message": message }),
        );
    }

    /// The project a file belongs to (created on first use).
    pub fn project_of(&mut self, path: &Path) -> &mut Project {
        let root = match self.roots.get(path) {
            Some(r) => r.clone(),
            None => {
                let known = &mut self.folder_is_project;
                let r = project::root_of(path, &self.folders, |w| {
                    *known
                        .entry(w.to_path_buf())
                        .or_insert_with(|| project::is_project(w))
                });
                self.roots.insert(path.to_path_buf(), r.clone());
                r
            }
        };
        let started = self.started;
        self.projects
            .entry(root.clone())
            .or_insert_with(|| Project::new(root, started))
    }

    fn notification(&mut self, n: Notification) {
        let outcome = catch_unwind(AssertUnwindSafe(|| self.notification_inner(n)));
        if outcome.is_err() {
            self.log("relance lsp: internal error while handling a notification".into());
        }
    }

    fn notification_inner(&mut self, n: Notification) {
        match n.method.as_str() {
            "textDocument/didOpen" => {
                let Ok(p) = serde_json::from_value::<DidOpenTextDocumentParams>(n.params) else {
                    return;
                };
                let Some(path) = doc_path(&p.text_document.uri) else {
                    return;
                };
                self.overlays
                    .insert(path.clone(), p.text_document.text.clone());
                self.docs.insert(
                    path.clone(),
                    Doc {
                        text: p.text_document.text,
                        version: p.text_document.version,
                    },
                );
                let project = self.project_of(&path);
                // A file the last reading of the disk did not see.
                let rel = project.relative(&path);
                if rel.is_none_or(|r| project.snap.file_id(&r).is_none()) {
                    project.mark_disk_stale();
                }
                project.dirty = true;
            }
            "textDocument/didChange" => {
                let Ok(p) = serde_json::from_value::<DidChangeTextDocumentParams>(n.params) else {
                    return;
                };
                let Some(path) = doc_path(&p.text_document.uri) else {
                    return;
                };
                let Some(doc) = self.docs.get_mut(&path) else {
                    return;
                };
                for change in p.content_changes {
                    match change.range {
                        None => doc.text = change.text,
                        Some(range) => {
                            let f = crate::diagnostics::SourceFile::new("", doc.text.as_str());
                            let s = convert::offset(&f, range.start, self.encoding);
                            let e = convert::offset(&f, range.end, self.encoding).max(s);
                            doc.text.replace_range(s..e, &change.text);
                        }
                    }
                }
                doc.version = p.text_document.version;
                let text = doc.text.clone();
                self.overlays.insert(path.clone(), text);
                self.project_of(&path).dirty = true;
            }
            "textDocument/didSave" => {
                let Ok(p) = serde_json::from_value::<DidSaveTextDocumentParams>(n.params) else {
                    return;
                };
                if let Some(path) = doc_path(&p.text_document.uri) {
                    self.project_of(&path).mark_disk_stale();
                }
            }
            "textDocument/didClose" => {
                let Ok(p) = serde_json::from_value::<DidCloseTextDocumentParams>(n.params) else {
                    return;
                };
                if let Some(path) = doc_path(&p.text_document.uri) {
                    self.docs.remove(&path);
                    self.overlays.remove(&path);
                    self.project_of(&path).mark_disk_stale();
                }
            }
            "workspace/didChangeWatchedFiles" => {
                // A `relance.toml` may have come or gone.
                self.roots.clear();
                self.folder_is_project.clear();
                for p in self.projects.values_mut() {
                    p.mark_disk_stale();
                }
            }
            _ => {}
        }
    }

    /// Analyses every dirty project and publishes its diagnostics.
    pub fn flush(&mut self) {
        let dirty: Vec<PathBuf> = self
            .projects
            .iter()
            .filter(|(_, p)| p.dirty)
            .map(|(r, _)| r.clone())
            .collect();
        for root in dirty {
            let overlays = &self.overlays;
            let Some(project) = self.projects.get_mut(&root) else {
                continue;
            };
            let outcome = catch_unwind(AssertUnwindSafe(|| project.analyze(overlays)));
            if outcome.is_err() {
                project.snap =
                    project::Snapshot::failed("internal error while checking the project");
            }
            self.publish(&root);
        }
    }

    /// Hands the full check each project wants to the worker.
    fn start_jobs(&mut self) {
        let mut jobs = Vec::new();
        for p in self.projects.values_mut() {
            if !p.dirty
                && let Some(job) = p.job()
            {
                jobs.push(job);
            }
        }
        for job in jobs {
            let job = match &self.jobs {
                Some(tx) => match tx.send(job) {
                    Ok(()) => continue,
                    Err(crossbeam_channel::SendError(job)) => job,
                },
                None => job,
            };
            let done = job.run();
            self.done(done);
        }
    }

    /// A full check's result: published when it changed the diagnostics;
    /// `$/relance/checked` says the full check of the current state is in.
    fn done(&mut self, done: project::Done) {
        let root = done.root.clone();
        let Some(p) = self.projects.get_mut(&root) else {
            return;
        };
        let changed = p.done(done);
        let full = p.snap.full && !p.dirty;
        let generation = p.generation;
        if changed {
            self.publish(&root);
        }
        if full && let Some(uri) = convert::url(&root) {
            self.notify(
                "$/relance/checked",
                json!({ "root": uri, "generation": generation }),
            );
        }
    }

    fn publish(&mut self, root: &Path) {
        let Some(project) = self.projects.get(root) else {
            return;
        };
        let snap = &project.snap;
        if let Some(e) = &snap.load_error {
            self.log(format!("relance lsp: {}: {e}", root.display()));
        }
        let mut per_file: HashMap<PathBuf, Vec<lsp_types::Diagnostic>> = HashMap::new();
        // The open documents of the project get a list, empty or not.
        for path in self.docs.keys() {
            if project
                .relative(path)
                .is_some_and(|rel| snap.file_id(&rel).is_some())
            {
                per_file.entry(path.clone()).or_default();
            }
        }
        for d in &snap.diagnostics {
            let file = match &d.primary {
                Some(l) => root.join(&snap.sources.get(l.span.file).path),
                // Project-wide (no `.camp` file at all): on the manifest.
                None => root.join(crate::cli::manifest::MANIFEST),
            };
            let ld = convert::diagnostic(
                d,
                &snap.sources,
                root,
                self.encoding,
                self.explain_base.as_deref(),
            );
            per_file.entry(file).or_default().push(ld);
        }
        let before = self.published.remove(root).unwrap_or_default();
        let mut now_published = BTreeSet::new();
        let mut sends = Vec::new();
        for (path, list) in per_file {
            // Open documents always get a list (the client learns that the
            // version it has is checked); other files only when it changed.
            if list.is_empty() && !before.contains(&path) && !self.docs.contains_key(&path) {
                continue;
            }
            if !list.is_empty() {
                now_published.insert(path.clone());
            }
            sends.push((path, list));
        }
        for path in &before {
            if !sends.iter().any(|(p, _)| p == path) {
                sends.push((path.clone(), Vec::new()));
            }
        }
        sends.sort_by(|a, b| a.0.cmp(&b.0));
        for (path, diagnostics) in sends {
            let Some(uri) = convert::url(&path) else {
                continue;
            };
            let version = self.docs.get(&path).map(|d| d.version);
            self.notify(
                "textDocument/publishDiagnostics",
                PublishDiagnosticsParams {
                    uri,
                    diagnostics,
                    version,
                },
            );
        }
        self.published.insert(root.to_path_buf(), now_published);
    }

    /// The analysed project of a document, up to date, and its index.
    pub fn analysed(&mut self, uri: &Url) -> Option<(&Project, &Index, String)> {
        let path = doc_path(uri)?;
        let root = self.project_of(&path).root.clone();
        if self.projects.get(&root)?.dirty {
            self.flush();
        }
        let project = self.projects.get(&root)?;
        let rel = project.relative(&path)?;
        let fresh = self
            .indexes
            .get(&root)
            .is_some_and(|(g, _)| *g == project.generation);
        if !fresh {
            let ix = Index::build(&project.snap.sources, &project.snap.files);
            self.indexes.insert(root.clone(), (project.generation, ix));
        }
        let project = self.projects.get(&root)?;
        let (_, ix) = self.indexes.get(&root)?;
        Some((project, ix, rel))
    }

    fn request(&mut self, req: Request) {
        let id = req.id.clone();
        let outcome = catch_unwind(AssertUnwindSafe(|| features::handle(self, req)));
        let response = match outcome {
            Ok(Ok(value)) => Response::new_ok(id, value),
            Ok(Err((code, message))) => Response::new_err(id, code as i32, message),
            Err(_) => Response::new_err(
                id,
                ErrorCode::InternalError as i32,
                "relance lsp: internal error".into(),
            ),
        };
        self.send(response);
    }
}

/// The absolute, canonical path of a document (its folder resolved, so
/// that it matches the project's root).
fn doc_path(uri: &Url) -> Option<PathBuf> {
    let path = convert::path_of(uri)?;
    Some(canonical(&path))
}

fn canonical(path: &Path) -> PathBuf {
    if let Ok(c) = std::fs::canonicalize(path) {
        return c;
    }
    match (path.parent(), path.file_name()) {
        (Some(dir), Some(name)) => std::fs::canonicalize(dir)
            .map(|d| d.join(name))
            .unwrap_or_else(|_| path.to_path_buf()),
        _ => path.to_path_buf(),
    }
}
