//! Noticing changes to a project's files: one non-recursive watch per
//! folder the loader reads, and a short debounce of our own.
//!
//! The folders watched are exactly those the loader walks (symbolic links
//! to folders, hidden folders, `build/` and `target/` are not followed),
//! plus the folders of the template files the last build read. After each
//! batch of changes the set is brought up to date (folders made, removed or
//! renamed). A folder that cannot be watched (unreadable, or the system's
//! watch limit reached) is a warning ([`Changes::take_warnings`]), never a
//! reason to stop.
//!
//! Events only say *that* something may have changed; the build that
//! follows reads the disk as it is. So the filter here only has to avoid
//! useless builds (build output, version control, editor swap files) and
//! never miss a useful one: when in doubt, an event counts.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};

/// A batch ends after this much quiet: long enough to take in an editor's
/// save (write a temporary file, rename it over the original) or a `git
/// checkout` as one change, short enough not to be felt.
pub const QUIET: Duration = Duration::from_millis(30);
/// A batch never waits longer than this, even if writes keep coming.
pub const MAX_WAIT: Duration = Duration::from_secs(2);
/// While the project folder is missing, how often to look for it again.
const ROOT_POLL: Duration = Duration::from_millis(250);

/// Changes under one project folder.
pub struct Changes {
    watcher: RecommendedWatcher,
    events: Receiver<notify::Result<notify::Event>>,
    /// The project folder, absolute (events carry absolute paths).
    root: PathBuf,
    /// A project of one file: only its folder and `templates/` are read.
    one_file: bool,
    /// Project-relative paths the last build read or looked for.
    inputs: BTreeSet<String>,
    /// The folder itself was removed or replaced: watch it again.
    rewatch: bool,
    /// The folders watched now.
    watched: BTreeSet<PathBuf>,
    /// Folders that could not be watched, with why (warned once each).
    failed: BTreeMap<PathBuf, String>,
    /// Warnings not yet taken by [`Changes::take_warnings`].
    warnings: Vec<String>,
}

impl Changes {
    /// Starts watching `root` (a project folder): every folder the loader
    /// reads, and its parent, so that a folder removed and created again
    /// is noticed. For a project of one `.camp` file, `root` is its folder,
    /// which may hold much else: only the folder itself and its
    /// `templates/` folder are watched then.
    pub fn new(root: &Path, one_file: bool) -> Result<Changes, String> {
        let root = std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf());
        let (tx, events) = channel();
        let mut watcher = notify::recommended_watcher(tx).map_err(|e| {
            format!("cannot watch files: {e}; on Linux, raise fs.inotify.max_user_instances")
        })?;
        watcher
            .watch(&root, RecursiveMode::NonRecursive)
            .map_err(|e| format!("cannot watch `{}`: {e}", root.display()))?;
        if let Some(parent) = root.parent() {
            // Best effort: without it, a removed folder is found by polling.
            let _ = watcher.watch(parent, RecursiveMode::NonRecursive);
        }
        let mut changes = Changes {
            watcher,
            events,
            watched: BTreeSet::from([root.clone()]),
            root,
            one_file,
            inputs: BTreeSet::new(),
            rewatch: false,
            failed: BTreeMap::new(),
            warnings: Vec::new(),
        };
        changes.sync();
        Ok(changes)
    }

    /// Warnings about folders that could not be watched, once each.
    pub fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }

    /// The folders that should be watched now: those the loader walks,
    /// and those holding the last build's inputs.
    fn wanted(&mut self) -> BTreeSet<PathBuf> {
        let mut out = BTreeSet::new();
        if !self.root.is_dir() {
            return out;
        }
        out.insert(self.root.clone());
        let mut problems = Vec::new();
        if self.one_file {
            let templates = self.root.join("templates");
            if is_real_dir(&templates) {
                out.insert(templates.clone());
                folders_below(&templates, &mut out, &mut problems);
            }
        } else {
            folders_below(&self.root, &mut out, &mut problems);
        }
        for input in &self.inputs {
            let full = self.root.join(input);
            if let Some(dir) = full.parent()
                && dir.starts_with(&self.root)
                && dir.is_dir()
            {
                out.insert(dir.to_path_buf());
            }
        }
        for (dir, why) in problems {
            self.warn(dir, why);
        }
        out
    }

    fn warn(&mut self, dir: PathBuf, why: String) {
        if !self.failed.contains_key(&dir) {
            self.warnings.push(format!(
                "cannot watch `{}`: {why}; changes in it are not seen until it can be",
                dir.display()
            ));
            self.failed.insert(dir, why);
        }
    }

    /// Brings the watched folders up to date with [`Changes::wanted`].
    fn sync(&mut self) {
        let wanted = self.wanted();
        // Unwatch first: a renamed folder keeps its inotify watch, which a
        // watch of its new name would share.
        let gone: Vec<PathBuf> = self.watched.difference(&wanted).cloned().collect();
        for dir in gone {
            let _ = self.watcher.unwatch(&dir);
            self.watched.remove(&dir);
        }
        let new: Vec<PathBuf> = wanted.difference(&self.watched).cloned().collect();
        for dir in new {
            match self.watcher.watch(&dir, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    self.failed.remove(&dir);
                    self.watched.insert(dir);
                }
                Err(e) => {
                    let why = if matches!(e.kind, notify::ErrorKind::MaxFilesWatch) {
                        "the system's limit of watches is reached (on Linux, raise fs.inotify.max_user_watches)".to_string()
                    } else {
                        e.to_string()
                    };
                    self.warn(dir, why);
                }
            }
        }
        self.failed.retain(|d, _| wanted.contains(d));
    }

    /// The project-relative paths the last build read or looked for
    /// (events on them count whatever their extension).
    pub fn set_inputs(&mut self, inputs: BTreeSet<String>) {
        self.inputs = inputs;
    }

    /// Blocks until something relevant changes, then until the changes
    /// stop for [`QUIET`] (at most [`MAX_WAIT`]). Returns the number of
    /// relevant events taken in, or `None` when the watcher stopped.
    pub fn wait(&mut self) -> Option<usize> {
        loop {
            let first = if self.root.is_dir() && !self.rewatch {
                self.events
                    .recv()
                    .map_err(|_| RecvTimeoutError::Disconnected)
            } else {
                self.events.recv_timeout(ROOT_POLL)
            };
            match first {
                Ok(event) => {
                    if self.relevant(&event) {
                        break;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    // The folder came back without an event we could see.
                    if self.root.is_dir() {
                        self.watch_again();
                        return Some(1);
                    }
                }
                Err(RecvTimeoutError::Disconnected) => return None,
            }
        }
        let start = Instant::now();
        let mut last = start;
        let mut count = 1;
        loop {
            let quiet_left = QUIET.saturating_sub(last.elapsed());
            let max_left = MAX_WAIT.saturating_sub(start.elapsed());
            let wait = quiet_left.min(max_left);
            if wait.is_zero() {
                break;
            }
            match self.events.recv_timeout(wait) {
                Ok(event) => {
                    if self.relevant(&event) {
                        last = Instant::now();
                        count += 1;
                    }
                }
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        if self.rewatch && self.root.is_dir() {
            self.watch_again();
        } else {
            self.sync();
        }
        Some(count)
    }

    fn watch_again(&mut self) {
        let _ = self.watcher.unwatch(&self.root);
        self.watched.remove(&self.root);
        if self
            .watcher
            .watch(&self.root, RecursiveMode::NonRecursive)
            .is_ok()
        {
            self.watched.insert(self.root.clone());
            self.rewatch = false;
        }
        self.sync();
    }

    fn relevant(&mut self, event: &notify::Result<notify::Event>) -> bool {
        let event = match event {
            Ok(e) => e,
            // The watcher lost track (queue overflow…): build from disk.
            Err(_) => return true,
        };
        if event.need_rescan() {
            return true;
        }
        // Opening and reading files (our own builds do) changes nothing.
        if matches!(event.kind, EventKind::Access(_)) {
            return false;
        }
        let mut any = false;
        for path in &event.paths {
            if path == &self.root {
                // The project folder itself was removed, renamed or made.
                self.rewatch = true;
                any = true;
                continue;
            }
            let Ok(rel) = path.strip_prefix(&self.root) else {
                // A sibling of the project in its parent folder.
                continue;
            };
            any |= self.relevant_path(rel, path);
        }
        any
    }

    fn relevant_path(&self, rel: &Path, full: &Path) -> bool {
        let parts: Vec<String> = rel
            .components()
            .filter_map(|c| match c {
                Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
                _ => None,
            })
            .collect();
        let Some((name, dirs)) = parts.split_last() else {
            return true;
        };
        // The loader skips these folders, whatever their depth.
        if dirs.iter().any(|d| skipped_folder(d)) || skipped_folder(name) {
            return false;
        }
        if editor_temporary(name) {
            return false;
        }
        let rel = parts.join("/");
        if name.ends_with(".camp")
            || name.ends_with(".hbs")
            || name == crate::cli::manifest::MANIFEST
            || self.inputs.contains(&rel)
        {
            return true;
        }
        // A folder holding inputs was removed or renamed, or a folder
        // (possibly full of `.camp` files) appeared.
        let prefix = format!("{rel}/");
        self.inputs.iter().any(|i| i.starts_with(&prefix)) || full.is_dir() || !name.contains('.')
    }
}

/// Whether `path` is a folder and not a symbolic link to one.
fn is_real_dir(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir())
}

/// Every folder below `dir` that the loader walks (as `cli::load` does:
/// no symbolic links to folders, no hidden folders, no `build/` or
/// `target/`), added to `out`; folders that cannot be read go to
/// `problems`. Iterative, so that depth costs no stack.
fn folders_below(dir: &Path, out: &mut BTreeSet<PathBuf>, problems: &mut Vec<(PathBuf, String)>) {
    let mut todo = vec![dir.to_path_buf()];
    while let Some(dir) = todo.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) => {
                problems.push((dir, e.to_string()));
                continue;
            }
        };
        for entry in entries.flatten() {
            let Ok(ty) = entry.file_type() else { continue };
            let name = entry.file_name();
            let name = name.to_string_lossy();
            // `file_type` does not follow links: a link to a folder is not one.
            if ty.is_dir() && !skipped_folder(&name) {
                let path = entry.path();
                out.insert(path.clone());
                todo.push(path);
            }
        }
    }
}

fn skipped_folder(name: &str) -> bool {
    name.starts_with('.') || name == "build" || name == "target"
}

/// Files editors write while saving, which the loader never reads: vim's
/// swap files, backups and `4913` probe, Emacs' lock and autosave files,
/// JetBrains' `___jb_tmp___` / `___jb_old___`, and `*.tmp`.
fn editor_temporary(name: &str) -> bool {
    name.starts_with('.')
        || name.ends_with('~')
        || name == "4913"
        || (name.starts_with('#') && name.ends_with('#'))
        || [
            ".swp",
            ".swo",
            ".swx",
            ".tmp",
            "___jb_tmp___",
            "___jb_old___",
        ]
        .iter()
        .any(|s| name.ends_with(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn editor_files_are_not_changes() {
        for name in [
            ".welcome.camp.swp",
            "welcome.camp~",
            "4913",
            ".#welcome.camp",
            "#welcome.camp#",
            "welcome.camp___jb_tmp___",
            "welcome.camp___jb_old___",
            "x.tmp",
        ] {
            assert!(editor_temporary(name), "{name}");
        }
        for name in ["welcome.camp", "footer.hbs", "templates"] {
            assert!(!editor_temporary(name), "{name}");
        }
    }
}
