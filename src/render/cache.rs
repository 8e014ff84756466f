//! Work kept from one build of a project to the next, for `relance watch`:
//! compiled and analysed template bodies, per-persona checks and preview
//! files, each stored under a fingerprint of everything it was made from.
//!
//! A fingerprint hashes the `Debug` form of the render model's parts (so a
//! field added to [`TemplateInfo`] or [`PersonaInfo`] is covered without
//! anyone remembering to add it here) and the template texts themselves.
//! An entry is reused only when its fingerprint is unchanged, so a build
//! that uses the cache gives the same bytes as one that does not; the
//! cache only decides how much work is redone.
//!
//! [`TemplateInfo`]: super::model::TemplateInfo
//! [`PersonaInfo`]: super::model::PersonaInfo

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::fmt::{self, Debug, Write as _};
use std::hash::Hasher;
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
    pub(super) previews: HashMap<String, (u64, Arc<TemplatePreviews>)>,
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
}

/// One template rendered for every persona: what `previews` needs of it.
pub(super) struct TemplatePreviews {
    pub messages: Vec<RenderedMessage>,
    pub files: Vec<(String, Arc<Vec<u8>>)>,
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
