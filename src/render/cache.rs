//! Work kept from one build of a project to the next, for `relance watch`:
//! compiled and analysed template bodies, per-persona checks and preview
//! files, each stored under a fingerprint of everything it was made from.
//!
//! A fingerprint hashes the render model's parts whole — through a derived
//! `Hash` ([`TemplateInfo`]) or their `Debug` form ([`PersonaInfo`], which
//! holds JSON) — so a field added to them is covered without anyone
//! remembering to add it here, and the template texts themselves.
//! An entry is reused only when its fingerprint is unchanged, so a build
//! that uses the cache gives the same bytes as one that does not; the
//! cache only decides how much work is redone.
//!
//! [`TemplateInfo`]: super::model::TemplateInfo
//! [`PersonaInfo`]: super::model::PersonaInfo

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::{self, Debug, Write as _};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use super::RenderedMessage;
use super::analyze::Unit;
use super::problem::TemplateProblem;

/// What a project's previous builds left for the next one. Start with
/// `RenderCache::default()` and pass the same value to every build of the
/// same project; it never changes what a build produces.
#[derive(Default)]
pub struct RenderCache {
    /// Partial name → (fingerprint, unit, its syntax problems).
    pub(super) partials: HashMap<String, (u64, Arc<Unit>, Vec<TemplateProblem>)>,
    /// Template name → its compiled and analysed bodies.
    pub(super) templates: HashMap<String, CachedTemplate>,
    /// Template name → (fingerprint, problems of the per-persona checks).
    pub(super) checks: HashMap<String, (u64, Arc<Vec<TemplateProblem>>)>,
    /// Template name → (fingerprint, its preview files and messages).
    pub(super) previews: HashMap<String, (u64, TemplatePreviews)>,
    /// The preview files of every template in `previews` (not the index).
    pub(super) site: PreviewFiles,
    pub(super) stats: CacheStats,
}

/// How much of the last build was redone and how much reused.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Templates compiled and analysed.
    pub compiled: usize,
    /// Templates whose compiled bodies were reused.
    pub compile_reused: usize,
    /// Templates whose per-persona checks ran.
    pub checked: usize,
    pub check_reused: usize,
    /// Templates rendered for every persona into preview files.
    pub rendered: usize,
    pub render_reused: usize,
}

impl RenderCache {
    /// What the last build (`new_cached`, `check_cached`,
    /// `previews_cached`) redid and reused.
    pub fn stats(&self) -> CacheStats {
        self.stats
    }
}

pub(super) struct CachedTemplate {
    pub key: u64,
    /// Body index → its unit (bodies whose file is missing have none).
    pub units: Vec<(usize, Arc<Unit>)>,
    pub problems: Vec<TemplateProblem>,
    pub broken: bool,
    /// The names of the render context's root its bodies and URL
    /// templates read (see `analyze::Outcome::roots`); `None` when they may
    /// read any.
    pub reads: Option<Arc<BTreeSet<String>>>,
}

/// One template rendered for every persona: what `previews` needs of it.
pub(super) struct TemplatePreviews {
    pub messages: Vec<RenderedMessage>,
    /// Its rows of the index table (`preview::index_rows`).
    pub rows: String,
    /// Each message's row in its persona's page (`preview::persona_row`),
    /// in the order of `messages`.
    pub persona_rows: Vec<String>,
    /// Its files' paths in [`RenderCache::site`].
    pub files: Vec<String>,
    pub problems: Vec<TemplateProblem>,
}

/// A hash of values' `Debug` forms and of texts, in the order given.
pub(super) struct Fingerprint(DefaultHasher);

impl Fingerprint {
    pub fn new() -> Fingerprint {
        Fingerprint(DefaultHasher::new())
    }

    pub fn debug(&mut self, value: &dyn Debug) -> &mut Self {
        // Writing into the hasher avoids building the (large) string.
        let _ = write!(HashWriter(&mut self.0), "{value:?}");
        self.0.write_u8(0xff);
        self
    }

    /// For types whose every field is hashed (derived `Hash`).
    pub fn hash(&mut self, value: &impl Hash) -> &mut Self {
        value.hash(&mut self.0);
        self
    }

    pub fn text(&mut self, text: &str) -> &mut Self {
        self.0.write_usize(text.len());
        self.0.write(text.as_bytes());
        self
    }

    pub fn number(&mut self, n: u64) -> &mut Self {
        self.0.write_u64(n);
        self
    }

    pub fn finish(&self) -> u64 {
        self.0.finish()
    }
}

struct HashWriter<'a>(&'a mut DefaultHasher);

impl fmt::Write for HashWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.write(s.as_bytes());
        Ok(())
    }
}

/// Files by path (`preview/welcome/marie.html`), grouped by folder: a copy
/// shares every folder with the original, and changing a file copies only
/// its folder's entries. A build that renders one template again thus
/// copies one folder, not the whole site.
#[derive(Clone, Debug, Default)]
pub struct PreviewFiles {
    folders: BTreeMap<String, Arc<Folder>>,
}

/// File name → bytes.
type Folder = BTreeMap<String, Arc<Vec<u8>>>;

fn split(path: &str) -> (&str, &str) {
    path.rsplit_once('/').unwrap_or(("", path))
}

impl PreviewFiles {
    pub fn new() -> PreviewFiles {
        PreviewFiles::default()
    }

    pub fn get(&self, path: &str) -> Option<&Arc<Vec<u8>>> {
        let (folder, name) = split(path);
        self.folders.get(folder)?.get(name)
    }

    pub fn contains(&self, path: &str) -> bool {
        self.get(path).is_some()
    }

    pub fn insert(&mut self, path: &str, bytes: Arc<Vec<u8>>) {
        let (folder, name) = split(path);
        let files = self.folders.entry(folder.to_string()).or_default();
        Arc::make_mut(files).insert(name.to_string(), bytes);
    }

    pub fn remove(&mut self, path: &str) {
        let (folder, name) = split(path);
        if let Some(files) = self.folders.get_mut(folder) {
            Arc::make_mut(files).remove(name);
            if files.is_empty() {
                self.folders.remove(folder);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.folders.values().map(|f| f.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.folders.is_empty()
    }

    /// Every file with its path, in path order of (folder, name).
    pub fn iter(&self) -> impl Iterator<Item = (String, &Arc<Vec<u8>>)> {
        self.folders.iter().flat_map(|(folder, files)| {
            files.iter().map(move |(name, bytes)| {
                let path = if folder.is_empty() {
                    name.clone()
                } else {
                    format!("{folder}/{name}")
                };
                (path, bytes)
            })
        })
    }

    /// Every file with its path, as owned bytes (copied only when shared).
    pub fn into_files(self) -> BTreeMap<String, Vec<u8>> {
        let mut out = BTreeMap::new();
        for (folder, files) in self.folders {
            let files = Arc::try_unwrap(files).unwrap_or_else(|f| f.as_ref().clone());
            for (name, bytes) in files {
                let path = if folder.is_empty() {
                    name
                } else {
                    format!("{folder}/{name}")
                };
                let bytes = Arc::try_unwrap(bytes).unwrap_or_else(|b| b.as_ref().clone());
                out.insert(path, bytes);
            }
        }
        out
    }

    /// The same paths with the same bytes (shared folders compare at once).
    pub fn same_as(&self, other: &PreviewFiles) -> bool {
        self.folders.len() == other.folders.len()
            && self
                .folders
                .iter()
                .zip(&other.folders)
                .all(|((ka, a), (kb, b))| ka == kb && (Arc::ptr_eq(a, b) || a == b))
    }
}
