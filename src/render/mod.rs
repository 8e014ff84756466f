//! Template rendering (§6): every template of a checked project rendered for
//! every persona, the static checks of templates, and the preview files of
//! `relance build`. No I/O: the caller reads the template files and passes
//! them in a [`SourceMap`].
//!
//! ```text
//! ASTs ─ model ─┬─ bodies & partials ─ hbs::parse ─ analyze (static checks)
//!               │                     └ handlebars compile ─ registries
//!               └─ personas ─ render contexts ─ render ─ rendered checks
//!                                                    └─ previews (site/)
//! ```
//!
//! `site/` holds what is made for people to look at (the preview pages,
//! flow diagrams); the rest compiles, renders and checks templates.
//!
//! Problems are [`TemplateProblem`] values whose spans point inside the
//! template source: the `.hbs` file, or the string literal in the `.camp`
//! file.

mod analyze;
mod cache;
mod compat;
mod compliance;
mod hbs;
mod helpers;
mod model;
mod problem;
mod senders;
pub(crate) use model::{
    WORKSPACE_VARIABLES, preferences_url as preview_preferences_url, recipient, template_context,
    unsubscribe_url as preview_unsubscribe_url,
};
pub(crate) use senders::{PlanParts, RUN_PARTS};
mod site;
mod source;
mod text;
pub(crate) use site::{consent, flow, names, preview};

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;

use handlebars::{Context, Handlebars};
use serde_json::Value as Json;

use crate::diagnostics::{FileId, SourceMap, Span};
use crate::syntax::ast;

pub use cache::{CacheStats, PreviewFiles, RenderCache};
pub use flow::{
    cadence_svg, duration_text, expr_text, reentry_text, scenario_svg, term_text, trigger_text,
};
pub use model::{MessageKind, Mode};
pub use problem::{ProblemKind, TemplateProblem};
pub use source::{parent_dir, resolve_path};
pub use text::{
    SmsEncoding, decode_entities, escape_html, escape_html_value, escape_json, html_to_text,
    sms_length, sms_segments,
};

use analyze::{Env, Unit};
use cache::{CachedTemplate, Fingerprint, TemplatePreviews};
use model::{BodyValue, Model, PersonaInfo, TemplateInfo};
use source::Source;

/// Where partials live, relative to the project folder: `{{> footer}}` is
/// `templates/partials/footer.hbs`.
pub const PARTIALS_DIR: &str = "templates/partials";

/// The project-relative path of a partial.
pub fn partial_path(name: &str) -> String {
    format!("{PARTIALS_DIR}/{name}.hbs")
}

/// The flow pages of the preview site, relative to the output folder:
/// `preview/scenario/<name>.html` for each scenario and
/// `preview/cadence/<name>.html` for each cadence, each a standalone page
/// with the flow drawn as an inline SVG (`svg.flow`). `relance build` (and
/// `relance watch`) merge them with [`RenderProject::previews`], whose
/// index links to them. The same plan gives the same bytes.
/// A fingerprint of everything [`flow_pages`] reads from the plan (the
/// scenarios, the cadences, and each template's channel, kind and subject
/// or title): equal
/// fingerprints give equal pages, so `relance watch` draws them again only
/// when it changes.
pub fn flow_key(plan: &crate::plan::Plan) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    // The plan holds `f64`s (split shares), so no derived `Hash`: its
    // `Debug` text stands for it.
    format!(
        "{:?}{:?}{:?}",
        plan.scenario_order, plan.scenarios, plan.cadences
    )
    .hash(&mut h);
    for (name, t) in &plan.templates {
        (name, &t.channel, &t.kind).hash(&mut h);
        // Send boxes and the Sends list show the subject or title.
        flow::send_subject(plan, name).hash(&mut h);
    }
    h.finish()
}

pub fn flow_pages(plan: &crate::plan::Plan) -> BTreeMap<String, Vec<u8>> {
    // Names of a checked project are `[a-z_][a-z0-9_]*`; a plan read back
    // from elsewhere must not write outside `preview/`.
    let safe = |n: &str| {
        !n.is_empty()
            && n.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    };
    let mut files = BTreeMap::new();
    for name in plan.scenarios.keys().filter(|n| safe(n)) {
        if let Some(svg) = flow::scenario_svg(plan, name) {
            files.insert(
                format!("preview/scenario/{}.html", names::page_name(name)),
                preview::flow_page(plan, "scenario", name, &svg).into_bytes(),
            );
        }
    }
    for name in plan.cadences.keys().filter(|n| safe(n)) {
        if let Some(svg) = flow::cadence_svg(plan, name) {
            files.insert(
                format!("preview/cadence/{}.html", names::page_name(name)),
                preview::flow_page(plan, "cadence", name, &svg).into_bytes(),
            );
        }
    }
    files
}

/// A `file("…")` reference of a template, for the caller to load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateFileRef {
    /// Resolved against the `.camp` file's folder, relative to the project
    /// root with `/` separators; `None` when it leaves the project.
    pub path: Option<String>,
    /// As written in the `.camp` file.
    pub written: String,
    /// The path literal in the `.camp` file.
    pub span: Span,
}

/// Every `file("…")` of every template, in declaration order. The caller
/// reads these (and every `templates/partials/**/*.hbs`), adds them to the
/// [`SourceMap`] and passes their ids to [`RenderProject::new`].
pub fn referenced_files(sources: &SourceMap, files: &[ast::File]) -> Vec<TemplateFileRef> {
    let m = model::build(sources, files, 0);
    m.templates
        .iter()
        .flat_map(|t| &t.bodies)
        .filter_map(|b| match &b.value {
            BodyValue::File {
                resolved,
                written,
                span,
            } => Some(TemplateFileRef {
                path: resolved.clone(),
                written: written.clone(),
                span: *span,
            }),
            BodyValue::Inline { .. } => None,
        })
        .collect()
}

/// One message rendered for one persona.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderedMessage {
    pub template: String,
    pub persona: String,
    /// `email`, `sms`, `push`, `task` or `webhook`.
    pub channel: String,
    pub kind: MessageKind,
    pub subject: Option<String>,
    pub preheader: Option<String>,
    pub html: Option<String>,
    /// The text part: rendered from `text`, or derived from `html`.
    pub text: Option<String>,
    /// Whether `text` was derived from the HTML.
    pub text_derived: bool,
    /// Push title.
    pub title: Option<String>,
    /// SMS, push, task and webhook body.
    pub body: Option<String>,
    /// Webhook URL.
    pub url: Option<String>,
    /// An email's rendered `from` and `reply_to` (v1.1); `None`: the
    /// workspace `from`, no reply-to.
    pub from: Option<String>,
    pub reply_to: Option<String>,
    /// A task's rendered `assignee` (v1.1).
    pub assignee: Option<String>,
    /// A task's `due`, a webhook's method and headers (v1.1).
    pub operational: senders::Operational,
    /// The locale of the variant rendered (`None`: the unsuffixed parts).
    pub locale: Option<String>,
}

impl RenderedMessage {
    /// The message as a JSON object with sorted keys (the `.json` preview).
    pub fn to_json(&self) -> Json {
        let mut m: BTreeMap<&str, Json> = BTreeMap::new();
        m.insert("template", Json::from(self.template.as_str()));
        m.insert("persona", Json::from(self.persona.as_str()));
        m.insert("channel", Json::from(self.channel.as_str()));
        m.insert("kind", Json::from(self.kind.as_str()));
        let fields = [
            ("subject", &self.subject),
            ("preheader", &self.preheader),
            ("html", &self.html),
            ("text", &self.text),
            ("title", &self.title),
            ("body", &self.body),
            ("url", &self.url),
            ("from", &self.from),
            ("reply_to", &self.reply_to),
            ("assignee", &self.assignee),
            ("locale", &self.locale),
        ];
        for (k, v) in fields {
            if let Some(v) = v {
                m.insert(k, Json::from(v.as_str()));
            }
        }
        self.operational.insert_json(&mut m);
        if self.channel == "sms"
            && let Some(body) = &self.body
        {
            let (len, enc) = sms_length(body);
            let mut sms: BTreeMap<&str, Json> = BTreeMap::new();
            sms.insert("encoding", Json::from(enc.name()));
            sms.insert("length", Json::from(len));
            sms.insert("limit", Json::from(enc.limit()));
            sms.insert("segments", Json::from(sms_segments(len, enc)));
            m.insert("sms", sorted(sms));
        }
        sorted(m)
    }

    /// Pretty JSON with a final newline.
    pub fn to_json_string(&self) -> String {
        let mut s = serde_json::to_string_pretty(&self.to_json()).unwrap_or_default();
        s.push('\n');
        s
    }
}

/// A JSON object whose keys are in sorted order whatever serde_json's map.
fn sorted(m: BTreeMap<&str, Json>) -> Json {
    let mut out = serde_json::Map::new();
    for (k, v) in m {
        out.insert(k.to_string(), v);
    }
    Json::Object(out)
}

/// `relance render` output: the headers, then each part.
impl fmt::Display for RenderedMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers = [
            ("Template", Some(&self.template)),
            ("Persona", Some(&self.persona)),
            ("Channel", Some(&self.channel)),
            ("Locale", self.locale.as_ref()),
            ("URL", self.url.as_ref()),
            ("From", self.from.as_ref()),
            ("Reply-To", self.reply_to.as_ref()),
            ("Subject", self.subject.as_ref()),
            ("Preheader", self.preheader.as_ref()),
            ("Title", self.title.as_ref()),
            ("Assignee", self.assignee.as_ref()),
        ];
        for (k, v) in headers {
            if let Some(v) = v {
                writeln!(f, "{k}: {v}")?;
            }
        }
        if let Some(d) = self.operational.due_seconds {
            writeln!(f, "Due: {} after the send", duration_text(d))?;
        }
        if let Some(method) = &self.operational.method {
            writeln!(f, "Method: {method}")?;
        }
        for (k, v) in &self.operational.headers {
            writeln!(f, "Header {k}: {v}")?;
        }
        writeln!(f, "Kind: {}", self.kind.as_str())?;
        let parts = [
            ("html", self.html.as_ref()),
            (
                if self.text_derived {
                    "text (derived from the HTML)"
                } else {
                    "text"
                },
                self.text.as_ref(),
            ),
            ("body", self.body.as_ref()),
        ];
        for (k, v) in parts {
            if let Some(v) = v {
                writeln!(f, "\n--- {k} ---")?;
                f.write_str(v)?;
                if !v.ends_with('\n') {
                    writeln!(f)?;
                }
            }
        }
        Ok(())
    }
}

/// Why [`RenderProject::render_one`] produced nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RenderFailure {
    UnknownTemplate {
        name: String,
        suggestion: Option<String>,
    },
    UnknownPersona {
        name: String,
        suggestion: Option<String>,
    },
    /// The template has errors that make it unsafe to render (see `check`).
    TemplateHasErrors { template: String },
    /// Handlebars failed (for example a `date` format given by a variable).
    Failed {
        template: String,
        persona: String,
        attr: String,
        reason: String,
    },
}

impl fmt::Display for RenderFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RenderFailure::UnknownTemplate { name, suggestion } => {
                write!(f, "no template is named `{name}`")?;
                if let Some(s) = suggestion {
                    write!(f, "; did you mean `{s}`?")?;
                }
                Ok(())
            }
            RenderFailure::UnknownPersona { name, suggestion } => {
                write!(f, "no persona is named `{name}`")?;
                if let Some(s) = suggestion {
                    write!(f, "; did you mean `{s}`?")?;
                }
                Ok(())
            }
            RenderFailure::TemplateHasErrors { template } => write!(
                f,
                "template `{template}` has errors; run `relance check` to see them"
            ),
            RenderFailure::Failed {
                template,
                persona,
                attr,
                reason,
            } => write!(
                f,
                "the {attr} of template `{template}` fails to render for persona `{persona}`: {reason}"
            ),
        }
    }
}

impl std::error::Error for RenderFailure {}

/// A checked project ready to render: templates compiled once into one
/// Handlebars registry per escaping mode, personas turned into contexts.
pub struct RenderProject {
    model: Model,
    html: Handlebars<'static>,
    plain: Handlebars<'static>,
    json: Handlebars<'static>,
    /// Link and webhook URLs that are templates: values URL-encoded.
    url: Handlebars<'static>,
    /// Templates that must not be rendered (syntax errors, missing files,
    /// unknown partials or helpers, partial cycles).
    broken: BTreeSet<String>,
    /// Static problems, sorted.
    problems: Vec<TemplateProblem>,
    /// Per template and body: the span the rendered checks point at.
    spans: BTreeMap<(String, String), Span>,
    /// Per template: a fingerprint of everything its renderings depend on
    /// (see [`RenderCache`]).
    keys: HashMap<String, u64>,
    /// Per persona: its segments, `expect` lines and scenarios, through the
    /// evaluator (for its preview page).
    /// Filled only when previews are wanted ([`RenderProject::init_facts`]):
    /// `relance check` does not pay for it.
    facts: std::sync::OnceLock<BTreeMap<String, preview::PersonaFacts>>,
    /// The source of every body (by body key) and partial, for
    /// [`RenderProject::handlebars_inputs`].
    body_units: BTreeMap<String, Arc<Unit>>,
    partial_units: BTreeMap<String, Arc<Unit>>,
    /// Per template: the names of the context's root it reads (`None`:
    /// any). Personas that agree on those render alike, so the checks
    /// render one of them.
    /// The sets are numbered (equal sets, one number) so that a persona's
    /// shapes are computed once per set.
    reads: HashMap<String, Option<NumberedReads>>,
}

/// A template's names read, and the number of that set.
type NumberedReads = (usize, Arc<BTreeSet<String>>);

/// A persona's render context, made once per (persona, trigger events) in
/// each rendering thread, and its shapes: per numbered set of names read,
/// computed when first asked for, and for any name (`None`).
struct PersonaContext {
    ctx: Context,
    shapes: HashMap<Option<usize>, Shapes>,
}

type Contexts<'m> = HashMap<(usize, &'m BTreeSet<String>), PersonaContext>;

/// How alike personas render a template: `coarse` for the errors `build`
/// refuses (which values are present), `fine` for the compliance lint,
/// `exact` (the values read, hashed; only when the names read are known)
/// for SMS lengths and header line breaks.
#[derive(Clone, Copy)]
struct Shapes {
    coarse: u64,
    fine: u64,
    exact: Option<u64>,
}

/// Attributes that hold one line: a file's final line break is dropped.
fn single_line(channel: &str, attr: &str) -> bool {
    matches!(
        attr,
        "subject" | "preheader" | "title" | "from" | "reply_to" | "assignee"
    ) || (channel == "sms" || channel == "push") && attr == "body"
}

fn strip_final_newline(mut s: String) -> String {
    if s.ends_with('\n') {
        s.pop();
        if s.ends_with('\r') {
            s.pop();
        }
    }
    s
}

/// Compiles a Handlebars source as the bodies of previews are compiled
/// (the same scan and limits, `{{.}}` read as handlebars.js reads it); the
/// first problem found when it does not compile.
pub(crate) fn compile_source(text: &str) -> Result<handlebars::Template, String> {
    let mut problems = Vec::new();
    let unit = Unit::new(Source::file(FileId(0), text.to_string()), &mut problems);
    unit.compiled.ok_or_else(|| {
        problems.first().map_or_else(
            || "the template does not compile".to_string(),
            |p| p.message.clone(),
        )
    })
}

/// The registry name of a template body.
fn body_key(template: &str, attr: &str) -> String {
    // `#` cannot appear in a partial name, so the two never collide.
    format!("{template}#{attr}")
}

impl RenderProject {
    /// Prepares rendering. `files` are the checked ASTs; `template_files`
    /// maps each template file's project-relative path (`/` separators) —
    /// the `file("…")` bodies and the partials under `templates/partials/` —
    /// to its id in `sources`. `now` is the reference time (unix seconds)
    /// for `40d ago` and `now` in personas.
    pub fn new(
        sources: &SourceMap,
        files: &[ast::File],
        template_files: &BTreeMap<String, FileId>,
        now: i64,
    ) -> RenderProject {
        RenderProject::new_cached(
            sources,
            files,
            template_files,
            now,
            &mut RenderCache::default(),
        )
    }

    /// [`RenderProject::new`], reusing the compiled and analysed bodies of
    /// every template whose inputs (its declaration, its files, the
    /// partials, the schema) are unchanged since an earlier build that used
    /// the same `cache`. The result is the same as `new`'s.
    pub fn new_cached(
        sources: &SourceMap,
        files: &[ast::File],
        template_files: &BTreeMap<String, FileId>,
        now: i64,
        cache: &mut RenderCache,
    ) -> RenderProject {
        let model = model::build(sources, files, now);
        let mut problems = Vec::new();
        let text_of = |id: FileId| -> Option<String> {
            ((id.0 as usize) < sources.len()).then(|| sources.get(id).text.to_string())
        };
        cache.stats = CacheStats::default();

        // Partials.
        let prefix = format!("{PARTIALS_DIR}/");
        let mut partials: BTreeMap<String, Arc<Unit>> = BTreeMap::new();
        let mut partials_key = Fingerprint::new();
        for (path, id) in template_files {
            let Some(name) = path
                .strip_prefix(&prefix)
                .and_then(|p| p.strip_suffix(".hbs"))
                .filter(|n| !n.is_empty())
            else {
                continue;
            };
            let Some(text) = text_of(*id) else { continue };
            let key = Fingerprint::new()
                .text(name)
                .number(u64::from(id.0))
                .text(&text)
                .finish();
            partials_key.number(key);
            let unit = match cache.partials.get(name) {
                Some((k, unit, found)) if *k == key => {
                    problems.extend(found.iter().cloned());
                    unit.clone()
                }
                _ => {
                    let mut found = Vec::new();
                    let unit = Arc::new(Unit::new(Source::file(*id, text), &mut found));
                    problems.extend(found.iter().cloned());
                    cache
                        .partials
                        .insert(name.to_string(), (key, unit.clone(), found));
                    unit
                }
            };
            partials.insert(name.to_string(), unit);
        }
        cache.partials.retain(|name, _| partials.contains_key(name));
        let cyclic = analyze::partial_cycles(&partials, &mut problems);
        partials_key.debug(&cyclic);

        // Every part of the model but the templates is in the fingerprint
        // of every template. Listed without `..`: a field added to `Model`
        // does not compile here until it is given its place.
        let Model {
            fields,
            workspace,
            templates,
            personas,
            tz_field,
            schema_complete,
            flows_complete,
            flows,
            locales,
            locale_field,
        } = &model;
        // What the analysis of every template reads besides the template.
        let analysis_key = Fingerprint::new()
            .debug(fields)
            .debug(schema_complete)
            .debug(flows_complete)
            .number(partials_key.finish())
            .finish();
        // What rendering reads besides the template: personas, workspace,
        // time, and the list of templates (pages may link to the others).
        let template_list: Vec<(&str, &str, MessageKind)> = templates
            .iter()
            .map(|t| (t.name.as_str(), t.channel.as_str(), t.kind))
            .collect();
        let render_base = Fingerprint::new()
            .number(analysis_key)
            .debug(workspace)
            .debug(personas)
            .debug(tz_field)
            .debug(flows)
            .debug(locales)
            .debug(locale_field)
            .debug(&template_list)
            .number(now as u64)
            .finish();

        // Template bodies.
        let mut broken = BTreeSet::new();
        let mut units: Vec<(usize, usize, Arc<Unit>)> = Vec::new();
        let mut spans = BTreeMap::new();
        let mut keys = HashMap::new();
        let mut reads = HashMap::new();
        let mut read_sets: HashMap<Arc<BTreeSet<String>>, usize> = HashMap::new();
        for (ti, t) in model.templates.iter().enumerate() {
            let mut key = Fingerprint::new();
            key.number(analysis_key).hash(t);
            for b in &t.bodies {
                spans.insert((t.name.clone(), b.key()), b.value_span);
                match &b.value {
                    // The literal as written maps offsets back to the file.
                    BodyValue::Inline { span, .. } => {
                        let raw = ((span.file.0 as usize) < sources.len())
                            .then(|| {
                                sources
                                    .get(span.file)
                                    .text
                                    .get(span.start as usize..span.end as usize)
                            })
                            .flatten();
                        key.debug(&raw);
                    }
                    BodyValue::File { resolved, .. } => {
                        let found = resolved.as_ref().and_then(|p| template_files.get(p));
                        key.debug(&found);
                        if let Some(text) = found.and_then(|id| text_of(*id)) {
                            key.text(&text);
                        }
                    }
                }
            }
            let key = key.finish();
            keys.insert(
                t.name.clone(),
                Fingerprint::new().number(key).number(render_base).finish(),
            );
            let cached = match cache.templates.get(&t.name) {
                Some(c) if c.key == key => {
                    cache.stats.compile_reused += 1;
                    c
                }
                _ => {
                    cache.stats.compiled += 1;
                    let c =
                        Self::compile_template(sources, &model, t, &partials, template_files, key);
                    cache.templates.insert(t.name.clone(), c);
                    &cache.templates[&t.name]
                }
            };
            problems.extend(cached.problems.iter().cloned());
            let numbered = cached.reads.as_ref().map(|names| {
                let next = read_sets.len();
                let id = *read_sets.entry(names.clone()).or_insert(next);
                (id, names.clone())
            });
            reads.insert(t.name.clone(), numbered);
            if cached.broken {
                broken.insert(t.name.clone());
            }
            for (bi, unit) in &cached.units {
                units.push((ti, *bi, unit.clone()));
            }
        }
        cache.templates.retain(|name, _| keys.contains_key(name));

        // Partials no template uses are still checked, on their own.
        let mut reached = BTreeSet::new();
        for (_, _, u) in &units {
            let partial = |n: &str| partials.get(n).map(|u| u.parsed.nodes.as_slice());
            collect_reached(&u.parsed.nodes, &partial, &mut reached);
        }
        for (name, unit) in &partials {
            if !reached.contains(name) && unit.ok() && !cyclic.contains(name) {
                let env = Env {
                    model: &model,
                    template: None,
                    partials: &partials,
                };
                analyze::check_partial(&env, name, unit, &mut problems);
            }
        }

        // Registries.
        let tz = model
            .workspace
            .get("timezone")
            .and_then(|z| crate::tzdb::zone(z))
            .unwrap_or(jiff::tz::TimeZone::UTC);
        let links = Arc::new(link_orders(&model));
        let mut html = helpers::registry(
            Mode::Html,
            model.tz_field.clone(),
            tz.clone(),
            links.clone(),
        );
        let mut plain = helpers::registry(
            Mode::Plain,
            model.tz_field.clone(),
            tz.clone(),
            links.clone(),
        );
        let mut json = helpers::registry(
            Mode::Json,
            model.tz_field.clone(),
            tz.clone(),
            links.clone(),
        );
        let mut url = helpers::registry(Mode::Plain, model.tz_field.clone(), tz, links);
        url.register_escape_fn(text::escape_url_component);
        for (name, unit) in &partials {
            if cyclic.contains(name) {
                continue;
            }
            if let Some(c) = &unit.compiled {
                // `{{> [my partial]}}` and `{{> 'my partial'}}` name the
                // partial `my partial` (the crate keeps the brackets).
                for alias in [name.clone(), format!("[{name}]"), format!("'{name}'")] {
                    html.register_template(&alias, c.clone());
                    plain.register_template(&alias, c.clone());
                    json.register_template(&alias, c.clone());
                    url.register_template(&alias, c.clone());
                }
            }
        }
        let mut body_units = BTreeMap::new();
        for (ti, bi, unit) in units {
            let t = &model.templates[ti];
            if bi >= t.bodies.len() {
                let Some(u) = t.url_templates.get(bi - t.bodies.len()) else {
                    continue;
                };
                if let (false, Some(c)) = (broken.contains(&t.name), &unit.compiled) {
                    let key = body_key(&t.name, &u.attr());
                    let mut c = c.clone();
                    c.name = Some(key.clone());
                    url.register_template(&key, c);
                }
                continue;
            }
            body_units.insert(body_key(&t.name, &t.bodies[bi].key()), unit.clone());
            if broken.contains(&t.name) {
                continue;
            }
            let b = &t.bodies[bi];
            if let Some(c) = &unit.compiled {
                let r = match b.mode {
                    Mode::Html => &mut html,
                    Mode::Plain => &mut plain,
                    Mode::Json => &mut json,
                };
                let key = body_key(&t.name, &b.key());
                // Named, so that `{{#each links}}` finds the declared order.
                let mut c = c.clone();
                c.name = Some(key.clone());
                r.register_template(&key, c);
            }
        }
        problem::sort_problems(&mut problems);
        let facts = std::sync::OnceLock::new();
        RenderProject {
            model,
            html,
            plain,
            json,
            url,
            broken,
            problems,
            spans,
            keys,
            facts,
            body_units,
            partial_units: partials,
            reads,
        }
    }

    /// Compiles and analyses the bodies of one template: its units, the
    /// problems found, and whether it must not be rendered.
    fn compile_template(
        sources: &SourceMap,
        model: &Model,
        t: &TemplateInfo,
        partials: &BTreeMap<String, Arc<Unit>>,
        template_files: &BTreeMap<String, FileId>,
        key: u64,
    ) -> CachedTemplate {
        let text_of = |id: FileId| -> Option<String> {
            ((id.0 as usize) < sources.len()).then(|| sources.get(id).text.to_string())
        };
        let mut problems = Vec::new();
        let mut broken = false;
        let mut units = Vec::new();
        let mut reads = Reads::default();
        for (bi, b) in t.bodies.iter().enumerate() {
            let source = match &b.value {
                BodyValue::Inline { text, span } => Source::inline(sources, *span, text),
                BodyValue::File {
                    resolved,
                    written,
                    span,
                } => {
                    let found = resolved
                        .as_ref()
                        .and_then(|p| template_files.get(p).map(|id| (p, *id)));
                    match (
                        resolved,
                        found.and_then(|(p, id)| Some((p, id, text_of(id)?))),
                    ) {
                        (_, Some((_, id, text))) => {
                            let text = if single_line(&t.channel, &b.attr) {
                                strip_final_newline(text)
                            } else {
                                text
                            };
                            Source::file(id, text)
                        }
                        (None, _) => {
                            broken = true;
                            problems.push(
                                TemplateProblem::new(
                                    ProblemKind::MissingTemplateFile,
                                    *span,
                                    format!("`{written}` is outside the project folder"),
                                    "outside the project",
                                )
                                .help("template files live in the project folder; write a path relative to this `.camp` file"),
                            );
                            continue;
                        }
                        (Some(p), None) => {
                            broken = true;
                            problems.push(
                                TemplateProblem::new(
                                    ProblemKind::MissingTemplateFile,
                                    *span,
                                    format!("template file `{p}` not found"),
                                    "no such file",
                                )
                                .help("the path is relative to the folder of this `.camp` file"),
                            );
                            continue;
                        }
                    }
                }
            };
            let unit = Unit::new(source, &mut problems);
            let env = Env {
                model,
                template: Some(t),
                partials,
            };
            let errors = |problems: &[TemplateProblem]| {
                problems
                    .iter()
                    .filter(|p| p.kind.severity() == crate::diagnostics::Severity::Error)
                    .count()
            };
            let errors_before = errors(&problems);
            let outcome = analyze::check(&env, &unit, b.mode, &mut problems);
            reads.add(&outcome);
            let errors_after = errors(&problems);
            // A body with a static error is not rendered: its render
            // failure would only repeat the error.
            if outcome.broken || errors_after > errors_before {
                broken = true;
            }
            // A broken body (an unknown or invalid partial) may hide the
            // unsubscribe link: report the cause, not this echo.
            if b.attr == "html"
                && t.channel == "email"
                && t.kind == MessageKind::Marketing
                && unit.ok()
                && errors_after == errors_before
                && !outcome.unsubscribe
            {
                problems.push(
                    TemplateProblem::new(
                        ProblemKind::MissingUnsubscribe,
                        b.value_span,
                        format!("marketing email `{}` has no unsubscribe link", t.name),
                        "no `{{unsubscribe_url}}` in this HTML",
                    )
                    .also(t.name_span, "marketing email declared here")
                    .help("add a link such as `<a href=\"{{unsubscribe_url}}\">Unsubscribe</a>`, directly or in a partial; or declare `kind = transactional` if this is not marketing"),
                );
            }
            units.push((bi, Arc::new(unit)));
        }
        if Self::compile_urls(
            sources,
            model,
            t,
            partials,
            &mut units,
            &mut problems,
            &mut reads,
        ) {
            broken = true;
        }
        CachedTemplate {
            key,
            units,
            problems,
            broken,
            reads: reads.finish(model),
        }
    }

    /// Compiles and analyses the link and webhook URLs of `t` that are
    /// templates; their units go after the bodies' (index `bodies.len() +
    /// k` for the `k`-th URL template). Returns whether one has an error.
    fn compile_urls(
        sources: &SourceMap,
        model: &Model,
        t: &TemplateInfo,
        partials: &BTreeMap<String, Arc<Unit>>,
        units: &mut Vec<(usize, Arc<Unit>)>,
        problems: &mut Vec<TemplateProblem>,
        reads: &mut Reads,
    ) -> bool {
        let mut broken = false;
        for (k, u) in t.url_templates.iter().enumerate() {
            let unit = Unit::new(Source::inline(sources, u.span, &u.text), problems);
            let env = Env {
                model,
                template: Some(t),
                partials,
            };
            let before = problems.len();
            let outcome = analyze::check(&env, &unit, Mode::Plain, problems);
            reads.add(&outcome);
            let error = problems[before..]
                .iter()
                .any(|p| p.kind.severity() == crate::diagnostics::Severity::Error);
            broken |= outcome.broken || error || !unit.ok();
            units.push((t.bodies.len() + k, Arc::new(unit)));
        }
        broken
    }

    /// Template names, in declaration order.
    pub fn templates(&self) -> impl Iterator<Item = &str> {
        self.model.templates.iter().map(|t| t.name.as_str())
    }

    /// Persona names, in declaration order.
    pub fn personas(&self) -> impl Iterator<Item = &str> {
        self.model.personas.iter().map(|p| p.name.as_str())
    }

    /// The problems found without rendering, sorted by place.
    pub fn static_problems(&self) -> &[TemplateProblem] {
        &self.problems
    }

    /// Every check `relance build` runs on templates: the static ones and
    /// those that need every persona rendered (line breaks in headers, SMS
    /// length). Sorted by place.
    ///
    /// Every part is rendered (a part that fails for some persona is what
    /// `relance build` refuses), but once per persona *shape* (which values
    /// are present) for templates other than SMS, so that `relance check`
    /// stays fast on projects with many templates and personas.
    pub fn check(&self) -> Vec<TemplateProblem> {
        self.check_cached(&mut RenderCache::default())
    }

    /// [`RenderProject::check`], running the per-persona checks again only
    /// for templates whose fingerprint changed since a build that used
    /// `cache`.
    pub fn check_cached(&self, cache: &mut RenderCache) -> Vec<TemplateProblem> {
        let (templates, personas) = (self.sorted_templates(), self.sorted_personas());
        let todo: Vec<&TemplateInfo> = templates
            .iter()
            .copied()
            .filter(|t| !matches!(cache.checks.get(&t.name), Some((k, _)) if *k == self.key(t)))
            .collect();
        cache.stats.checked = todo.len();
        cache.stats.check_reused = templates.len() - todo.len();
        let found = self.render_some(&todo, &personas, true, false);
        for (t, (_, problems)) in todo.iter().zip(found) {
            cache
                .checks
                .insert(t.name.clone(), (self.key(t), Arc::new(problems)));
        }
        cache.checks.retain(|name, _| self.keys.contains_key(name));
        let mut problems = self.problems.clone();
        for t in &templates {
            if let Some((_, found)) = cache.checks.get(&t.name) {
                problems.extend(found.iter().cloned());
            }
        }
        problem::sort_problems(&mut problems);
        problems
    }

    /// One body of a template with one persona's context, ready to be
    /// rendered again and again: what a runner does for each send, and what
    /// the rendering benchmark measures (`benches/render.rs`).
    pub fn prepare(&self, template: &str, persona: &str, attr: &str) -> Option<Prepared<'_>> {
        let t = self.model.template(template)?;
        let p = self.model.persona(persona)?;
        // The body the persona receives: its locale's variant when there is one.
        let b = t
            .bodies_for(t.variant_for(p.locale.as_deref()))
            .find(|b| b.attr == attr)?;
        if self.broken.contains(&t.name) {
            return None;
        }
        let registry = match b.mode {
            Mode::Html => &self.html,
            Mode::Plain => &self.plain,
            Mode::Json => &self.json,
        };
        Some(Prepared {
            registry,
            key: body_key(&t.name, &b.key()),
            context: Context::from(self.context_of(t, p)),
        })
    }

    /// What an independent Handlebars implementation needs to render
    /// `template` for `persona` as relance does (`tests/handlebars_js.rs`
    /// gives it to handlebars.js): the render context as JSON text (the
    /// template's `links` in declaration order), each body's attribute,
    /// escaping mode and Handlebars source, and every partial's source.
    /// `None` for an unknown name or a template with errors.
    pub fn handlebars_inputs(&self, template: &str, persona: &str) -> Option<HandlebarsInputs> {
        let t = self.model.template(template)?;
        let p = self.model.persona(persona)?;
        if self.broken.contains(&t.name) {
            return None;
        }
        let bodies = t
            .bodies_for(t.variant_for(p.locale.as_deref()))
            .filter_map(|b| {
                let unit = self.body_units.get(&body_key(&t.name, &b.key()))?;
                Some((b.attr.clone(), b.mode, unit.source.text.clone()))
            })
            .collect();
        let partials = self
            .partial_units
            .iter()
            .map(|(n, u)| (n.clone(), u.source.text.clone()))
            .collect();
        let urls = t
            .url_templates
            .iter()
            .map(|u| (u.attr(), u.text.clone()))
            .collect();
        Some(HandlebarsInputs {
            context: context_text(&self.context_of(t, p), &t.links),
            url_context: context_text(&p.context(t), &t.links),
            urls,
            bodies,
            partials,
            timezone_field: self.model.tz_field.clone(),
            timezone: self
                .model
                .workspace
                .get("timezone")
                .cloned()
                .unwrap_or_else(|| "UTC".to_string()),
        })
    }

    /// The render context of `p` for `t`, with `t`'s links rendered.
    fn context_of(&self, t: &TemplateInfo, p: &PersonaInfo) -> Json {
        let mut data = p.context(t);
        if let Ok(urls) = self.rendered_urls(t, &Context::from(data.clone()))
            && let Some(links) = data.get_mut("links").and_then(|l| l.as_object_mut())
        {
            for (u, rendered) in t.url_templates.iter().zip(urls) {
                if let Some(n) = &u.link {
                    links.insert(n.clone(), Json::String(rendered));
                }
            }
        }
        data
    }

    /// A persona as one line of `relance run`'s contacts JSONL: `id`, its
    /// field values as its previews see them, `lists` and `tags` (what
    /// `relance render --format eml` composes a message for).
    pub fn persona_contact(&self, persona: &str) -> Option<serde_json::Map<String, Json>> {
        let p = self.model.persona(persona)?;
        let mut line = p.base.clone();
        for builtin in ["unsubscribe_url", "preferences_url", "workspace"] {
            line.remove(builtin);
        }
        line.retain(|_, v| !v.is_null());
        Some(line)
    }

    /// The `trigger` of `persona`'s render context for `template`: the
    /// latest value of each field among its events of the template's
    /// trigger types.
    pub fn persona_trigger(
        &self,
        template: &str,
        persona: &str,
    ) -> Option<serde_json::Map<String, Json>> {
        let t = self.model.template(template)?;
        Some(self.model.persona(persona)?.trigger(t))
    }

    /// Renders one template for one persona.
    pub fn render_one(
        &self,
        template: &str,
        persona: &str,
    ) -> Result<RenderedMessage, RenderFailure> {
        let Some(t) = self.model.template(template) else {
            return Err(RenderFailure::UnknownTemplate {
                name: template.to_string(),
                suggestion: crate::diagnostics::did_you_mean(template, self.templates())
                    .map(str::to_string),
            });
        };
        let Some(p) = self.model.persona(persona) else {
            return Err(RenderFailure::UnknownPersona {
                name: persona.to_string(),
                suggestion: crate::diagnostics::did_you_mean(persona, self.personas())
                    .map(str::to_string),
            });
        };
        self.render(t, p)
    }

    fn render(&self, t: &TemplateInfo, p: &PersonaInfo) -> Result<RenderedMessage, RenderFailure> {
        let mut ctx = Context::from(p.context(t));
        self.render_parts(t, p, &mut ctx, t.variant_for(p.locale.as_deref()))
    }

    /// Renders with `ctx`, the persona's context for the template's trigger
    /// events; only the template's `links` are set here, so one context
    /// serves every template with the same triggers. Every part is
    /// rendered, also for `relance check`: a part that fails for some
    /// persona is what `relance build` refuses.
    /// `locale`: the variant to render (`None`: the unsuffixed bodies).
    fn render_parts(
        &self,
        t: &TemplateInfo,
        p: &PersonaInfo,
        ctx: &mut Context,
        locale: Option<&str>,
    ) -> Result<RenderedMessage, RenderFailure> {
        if let Some(data) = ctx.data_mut().as_object_mut() {
            let links: serde_json::Map<String, serde_json::Value> = t
                .links
                .iter()
                .map(|(n, u)| (n.clone(), serde_json::Value::String(u.clone())))
                .collect();
            data.insert("links".into(), serde_json::Value::Object(links));
        }
        if self.broken.contains(&t.name) {
            return Err(RenderFailure::TemplateHasErrors {
                template: t.name.clone(),
            });
        }
        // URLs that are templates: rendered with the declared links, then
        // the bodies see the rendered ones.
        let urls = self
            .rendered_urls(t, ctx)
            .map_err(|(attr, reason)| RenderFailure::Failed {
                template: t.name.clone(),
                persona: p.name.clone(),
                attr,
                reason,
            })?;
        let mut webhook_url = t.url.clone();
        if let Some(links) = ctx
            .data_mut()
            .as_object_mut()
            .and_then(|d| d.get_mut("links"))
            .and_then(|l| l.as_object_mut())
        {
            for (u, rendered) in t.url_templates.iter().zip(&urls) {
                match &u.link {
                    Some(n) => {
                        links.insert(n.clone(), serde_json::Value::String(rendered.clone()));
                    }
                    None => webhook_url = Some(rendered.clone()),
                }
            }
        }
        let ctx = &*ctx;
        let fail = |attr: &str, reason: String| RenderFailure::Failed {
            template: t.name.clone(),
            persona: p.name.clone(),
            attr: attr.to_string(),
            reason,
        };
        let mut m = RenderedMessage {
            template: t.name.clone(),
            persona: p.name.clone(),
            channel: t.channel.clone(),
            kind: t.kind,
            subject: None,
            preheader: None,
            html: None,
            text: None,
            text_derived: false,
            title: None,
            body: None,
            url: webhook_url,
            from: None,
            reply_to: None,
            assignee: None,
            operational: t.operational.clone(),
            locale: locale.map(str::to_string),
        };
        for b in t.bodies_for(locale) {
            let r = match b.mode {
                Mode::Html => &self.html,
                Mode::Plain => &self.plain,
                Mode::Json => &self.json,
            };
            let out = helpers::render(r, &body_key(&t.name, &b.key()), ctx)
                .map_err(|e| fail(&b.key(), e))?;
            let slot = match b.attr.as_str() {
                "subject" => &mut m.subject,
                "preheader" => &mut m.preheader,
                "html" => &mut m.html,
                "text" => &mut m.text,
                "title" => &mut m.title,
                "from" => &mut m.from,
                "reply_to" => &mut m.reply_to,
                "assignee" => &mut m.assignee,
                _ => &mut m.body,
            };
            // A partial file's final line break ends up at the end of a
            // one-line header: an editor artifact, not a second line.
            let out = if single_line(&t.channel, &b.attr) && b.attr != "body" {
                out.trim_end_matches(['\n', '\r']).to_string()
            } else {
                out
            };
            *slot = Some(out);
        }
        if t.channel == "email"
            && m.text.is_none()
            && let Some(h) = &m.html
        {
            m.text = Some(html_to_text(h));
            m.text_derived = true;
        }
        Ok(m)
    }

    /// The link and webhook URLs of `t` that are templates, rendered with
    /// `ctx` (values percent-encoded), in `t.url_templates` order; or the
    /// attribute that failed and why.
    fn rendered_urls(
        &self,
        t: &TemplateInfo,
        ctx: &Context,
    ) -> Result<Vec<String>, (String, String)> {
        t.url_templates
            .iter()
            .map(|u| {
                helpers::render(&self.url, &body_key(&t.name, &u.attr()), ctx)
                    .map_err(|e| (u.attr(), e))
            })
            .collect()
    }

    /// E0520 when a URL of `t` rendered for `p` is no longer an `https:`
    /// or `mailto:` URL.
    fn url_problem(
        &self,
        t: &TemplateInfo,
        p: &PersonaInfo,
        ctx: &Context,
    ) -> Option<TemplateProblem> {
        let urls = self.rendered_urls(t, ctx).ok()?;
        let (u, rendered) = t
            .url_templates
            .iter()
            .zip(&urls)
            .find(|(_, r)| !text::is_sendable_url(r))?;
        Some(
            TemplateProblem::new(
                ProblemKind::RenderedUrl,
                u.span,
                format!(
                    "{} of `{}` renders as `{}` for persona `{}`, not an `https://` or `mailto:` URL",
                    u.what(),
                    t.name,
                    hbs::shorten(rendered),
                    p.name
                ),
                "not https: or mailto: once rendered",
            )
            .help("write the scheme and host in the template (`https://acme.example/…`) and insert contact values only after them: inserted values are URL-encoded"),
        )
    }

    /// Every template rendered for every persona (templates, then personas,
    /// in name order), with every problem: the static ones and those found
    /// in the rendered messages. Templates with errors are skipped.
    pub fn render_all(&self) -> (Vec<RenderedMessage>, Vec<TemplateProblem>) {
        let (templates, personas) = (self.sorted_templates(), self.sorted_personas());
        let mut problems = self.problems.clone();
        let mut messages = Vec::new();
        for (m, p) in self.render_some(&templates, &personas, false, true) {
            messages.extend(m);
            problems.extend(p);
        }
        problem::sort_problems(&mut problems);
        (messages, problems)
    }

    fn sorted_templates(&self) -> Vec<&TemplateInfo> {
        let mut templates: Vec<&TemplateInfo> = self.model.templates.iter().collect();
        templates.sort_by(|a, b| a.name.cmp(&b.name));
        templates
    }

    fn sorted_personas(&self) -> Vec<&PersonaInfo> {
        let mut personas: Vec<&PersonaInfo> = self.model.personas.iter().collect();
        personas.sort_by(|a, b| a.name.cmp(&b.name));
        personas
    }

    /// The fingerprint of everything `t`'s renderings depend on.
    fn key(&self, t: &TemplateInfo) -> u64 {
        self.keys.get(&t.name).copied().unwrap_or_default()
    }

    /// [`Self::key`] with the personas that get no preview for consent.
    fn preview_key(&self, t: &TemplateInfo) -> u64 {
        self.key(t) ^ consent::key(&consent::withheld(t, self.facts.get()))
    }

    /// Renders `templates` for `personas` on every core; `checked_only`:
    /// only the parts per-persona checks need; `keep`: return the messages
    /// too. One result per template, in the order given.
    fn render_some(
        &self,
        templates: &[&TemplateInfo],
        personas: &[&PersonaInfo],
        checked_only: bool,
        keep: bool,
    ) -> Vec<(Vec<RenderedMessage>, Vec<TemplateProblem>)> {
        // Templates are rendered on every core, in interleaved shares; the
        // results are put back in template order.
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(templates.len());
        if threads <= 1 {
            let mut contexts = HashMap::new();
            return templates
                .iter()
                .map(|t| self.render_template(t, personas, &mut contexts, checked_only, keep))
                .collect();
        }
        let mut results: Vec<Option<(Vec<RenderedMessage>, Vec<TemplateProblem>)>> =
            (0..templates.len()).map(|_| None).collect();
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|k| {
                    scope.spawn(move || {
                        // One context per (persona, trigger events), reused.
                        let mut contexts: Contexts<'_> = HashMap::new();
                        (k..templates.len())
                            .step_by(threads)
                            .map(|i| {
                                (
                                    i,
                                    self.render_template(
                                        templates[i],
                                        personas,
                                        &mut contexts,
                                        checked_only,
                                        keep,
                                    ),
                                )
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            for h in handles {
                for (i, r) in h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)) {
                    results[i] = Some(r);
                }
            }
        });
        results.into_iter().map(Option::unwrap_or_default).collect()
    }

    /// Every persona's rendering of one template, with the problems found.
    /// A template with per-locale variants is rendered once per variant
    /// (the unsuffixed one first): checks render every persona in every
    /// variant, previews each persona in its own locale.
    fn render_template<'m>(
        &'m self,
        t: &'m TemplateInfo,
        personas: &[&'m PersonaInfo],
        contexts: &mut Contexts<'m>,
        checked_only: bool,
        keep: bool,
    ) -> (Vec<RenderedMessage>, Vec<TemplateProblem>) {
        if t.locales.is_empty() {
            return self.render_template_in(t, None, personas, contexts, checked_only, keep);
        }
        let (mut messages, mut problems) = (Vec::new(), Vec::new());
        for locale in std::iter::once(None).chain(t.locales.iter().map(|l| Some(l.as_str()))) {
            // The persona index keys the shared contexts: keep every
            // persona's place, and skip the others in the loop below.
            let who: Vec<&PersonaInfo> = if checked_only {
                personas.to_vec()
            } else {
                personas
                    .iter()
                    .copied()
                    .filter(|p| t.variant_for(p.locale.as_deref()) == locale)
                    .collect()
            };
            if who.is_empty() && !personas.is_empty() {
                continue;
            }
            let mut own = HashMap::new();
            let contexts = if who.len() == personas.len() {
                &mut *contexts
            } else {
                &mut own
            };
            let (m, p) = self.render_template_in(t, locale, &who, contexts, checked_only, keep);
            messages.extend(m);
            problems.extend(p);
        }
        (messages, problems)
    }

    /// [`RenderProject::render_template`] for one variant.
    fn render_template_in<'m>(
        &'m self,
        t: &'m TemplateInfo,
        locale: Option<&'m str>,
        personas: &[&'m PersonaInfo],
        contexts: &mut Contexts<'m>,
        checked_only: bool,
        keep: bool,
    ) -> (Vec<RenderedMessage>, Vec<TemplateProblem>) {
        let mut problems = Vec::new();
        let mut messages = Vec::new();
        if self.broken.contains(&t.name) {
            return (messages, problems);
        }
        // A part's span: its variant's when this locale has one.
        let span_of = |attr: &str| {
            let key = match locale {
                Some(l)
                    if t.bodies
                        .iter()
                        .any(|b| b.attr == attr && b.locale.as_deref() == Some(l)) =>
                {
                    format!("{attr}.{l}")
                }
                _ => attr.to_string(),
            };
            self.spans
                .get(&(t.name.clone(), key))
                .copied()
                .unwrap_or(t.name_span)
        };
        // Header → personas whose rendering has a line break.
        let mut breaks: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        // SMS over one segment: (length, encoding, persona).
        let mut long: Vec<(usize, SmsEncoding, &str)> = Vec::new();
        // In check mode, a template other than an SMS is rendered once per
        // persona *shape* (which values are present), since its headers can
        // only fail or break lines differently through present or absent
        // values; personas whose values hold a line break or a `%` (a
        // format) are their own shape. SMS lengths need every persona.
        let mut shapes_seen: std::collections::HashSet<u64> = std::collections::HashSet::new();
        let mut compliance = self
            .compliance_applies(t)
            .then(compliance::Findings::default);
        // Check mode renders every persona in every variant, so that a
        // variant no persona reads is checked too; but the compliance lint
        // is about what each persona receives: the personas of this
        // variant's locale, per fine shape. The others render it once per
        // coarse shape (for the errors `build` refuses), and a variant no
        // persona receives is linted once per coarse shape.
        let receives =
            |p: &PersonaInfo| t.locales.is_empty() || t.variant_for(p.locale.as_deref()) == locale;
        let anyone_receives = personas.iter().any(|p| receives(p));
        let reads = self
            .reads
            .get(&t.name)
            .and_then(Option::as_ref)
            .map(|(id, names)| (id, &**names));
        // Checks only: personas that agree on every value the template
        // reads render it byte for byte alike, so one rendering answers
        // for all of them (SMS lengths, line breaks in headers). What it
        // found, by the hash of those values: the headers that broke and
        // the SMS length when over one segment.
        let mut alike: HashMap<u64, Alike> = HashMap::new();
        for (i, p) in personas.iter().enumerate() {
            // Only a template that may read `trigger.*` needs the persona's
            // events of its trigger types; the others share one context.
            let uses_trigger = t.bodies.iter().any(|b| match &b.value {
                model::BodyValue::Inline { text, .. } => text.contains("trigger"),
                _ => true,
            });
            let key = if uses_trigger {
                &t.trigger_events
            } else {
                &NO_TRIGGER
            };
            // The shapes depend on the context and on the names the
            // template reads: computed once per context and set of names,
            // not once per template.
            let pc = contexts.entry((i, key)).or_insert_with(|| {
                // For any name, from the context as made (rendering adds
                // the template's `links` to it later).
                let data = p.context(t);
                let any = Shapes {
                    coarse: context_shape(&data, None, i),
                    fine: compliance::shape(&data, None, &self.model, i),
                    exact: None,
                };
                PersonaContext {
                    ctx: Context::from(data),
                    shapes: HashMap::from([(None, any)]),
                }
            });
            let only = reads.map(|(_, names)| names);
            let shapes = *pc
                .shapes
                .entry(reads.map(|(id, _)| *id))
                .or_insert_with(|| {
                    let data = pc.ctx.data();
                    Shapes {
                        coarse: context_shape(data, only, i),
                        fine: compliance::shape(data, only, &self.model, i),
                        exact: only.map(|names| values_hash(data, names)),
                    }
                });
            let (ctx, shape, fine_shape) = (&mut pc.ctx, &shapes.coarse, &shapes.fine);
            if !t.url_templates.is_empty()
                && let Some(problem) = self.url_problem(t, p, ctx)
            {
                problems.push(problem);
                continue;
            }
            // Compliance depends on values too (`{{#if vip}}`): its own,
            // finer shape (see `compliance::shape`), in check and build alike.
            let compliance_shape = compliance.as_ref().and_then(|_| {
                if !checked_only || receives(p) {
                    Some(*fine_shape)
                } else if anyone_receives {
                    None
                } else {
                    Some(*shape)
                }
            });
            if let (Some(c), Some(s)) = (&mut compliance, compliance_shape)
                && c.knows(s)
            {
                c.same_as(s, &p.name);
                if checked_only && t.channel != "sms" {
                    continue;
                }
            } else if checked_only
                && t.channel != "sms"
                && compliance_shape.is_none()
                && !shapes_seen.insert(*shape)
            {
                continue;
            }
            let exact = shapes
                .exact
                .filter(|_| checked_only && !keep && compliance_shape.is_none());
            if let Some((broke, over)) = exact.and_then(|k| alike.get(&k)) {
                for attr in broke {
                    breaks.entry(attr).or_default().push(&p.name);
                }
                if let Some((len, enc)) = over {
                    long.push((*len, *enc, &p.name));
                }
                continue;
            }
            let m = match self.render_parts(t, p, ctx, locale) {
                Ok(m) => m,
                Err(RenderFailure::Failed { attr, reason, .. })
                    if reason.starts_with(helpers::TOO_LARGE) =>
                {
                    problems.push(
                        TemplateProblem::new(
                            ProblemKind::RenderTooLarge,
                            span_of(&attr),
                            format!(
                                "the {attr} of `{}` is too large when rendered for persona `{}`: {}",
                                t.name,
                                p.name,
                                reason.trim_start_matches(helpers::TOO_LARGE).trim_start_matches(": ")
                            ),
                            "renders too large",
                        )
                        .help(format!(
                            "a part may render to {} KiB and {} `{{{{#each}}}}` iterations at most: do not nest loops over lists, or shorten the persona's lists",
                            helpers::MAX_RENDERED_BYTES / 1024,
                            helpers::MAX_ITERATIONS
                        )),
                    );
                    continue;
                }
                Err(RenderFailure::Failed { attr, reason, .. }) => {
                    problems.push(
                        TemplateProblem::new(
                            ProblemKind::InvalidHelperCall,
                            span_of(&attr),
                            format!(
                                "the {attr} of `{}` fails to render for persona `{}`: {reason}",
                                t.name, p.name
                            ),
                            "fails to render",
                        )
                        .help("check the helpers' arguments for this persona's values"),
                    );
                    continue;
                }
                Err(_) => continue,
            };
            let mut broke = Vec::new();
            for (attr, v) in [
                ("subject", &m.subject),
                ("preheader", &m.preheader),
                ("title", &m.title),
            ] {
                if v.as_deref().is_some_and(|s| s.contains(['\n', '\r'])) {
                    breaks.entry(attr).or_default().push(&p.name);
                    broke.push(attr);
                }
            }
            let mut over = None;
            if let (Some(c), Some(s)) = (&mut compliance, compliance_shape)
                && !c.knows(s)
            {
                c.persona(p, &m, &self.address(), s);
            }
            if t.channel == "sms"
                && let Some(body) = &m.body
            {
                let (len, enc) = sms_length(body);
                if len > enc.limit() {
                    long.push((len, enc, &p.name));
                    over = Some((len, enc));
                }
            }
            if let Some(k) = exact {
                alike.insert(k, (broke, over));
            }
            if keep {
                messages.push(m);
            }
        }
        for (attr, names) in breaks {
            if self.literal_break(t, attr) {
                // The checker reports a line break written in the literal.
                continue;
            }
            let list = names
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ");
            let (noun, plural) = if names.len() == 1 {
                ("persona", "")
            } else {
                ("personas", "s")
            };
            problems.push(
                TemplateProblem::new(
                    ProblemKind::HeaderLineBreak,
                    span_of(attr),
                    format!(
                        "the {attr} of `{}` contains a line break when rendered for {noun} {list}",
                        t.name
                    ),
                    format!("renders with a line break for {} persona{plural}", names.len()),
                )
                .help(format!(
                    "a {attr} is a single line: remove the line breaks from the template, or keep line breaks out of the values it inserts"
                )),
            );
        }
        if let Some(&(len, enc, worst)) = long
            .iter()
            .max_by_key(|(l, _, n)| (*l, std::cmp::Reverse(*n)))
        {
            let others: Vec<String> = long
                .iter()
                .filter(|(_, _, n)| *n != worst)
                .map(|(l, _, n)| format!("`{n}` ({l})"))
                .collect();
            let mut message = format!(
                "SMS `{}` is {len} {} characters long for persona `{worst}`, more than the {} of one message",
                t.name,
                enc.name(),
                enc.limit()
            );
            if !others.is_empty() {
                message.push_str(&format!("; also too long for {}", others.join(", ")));
            }
            let help = match enc {
                SmsEncoding::Ucs2 => {
                    "a character outside the GSM-7 alphabet (an accent such as `ê`, an emoji) limits an SMS to 70 characters: replace it, or shorten the text"
                }
                SmsEncoding::Gsm7 => {
                    "longer messages are sent and billed as several SMS: shorten the text or the link"
                }
            };
            problems.push(
                TemplateProblem::new(
                    ProblemKind::SmsTooLong,
                    span_of("body"),
                    message,
                    format!("{len} characters for `{worst}`"),
                )
                .help(help),
            );
        }
        // No persona: render once for a contact with no data.
        if personas.is_empty()
            && let Some(c) = &mut compliance
        {
            let nobody = compliance::nobody(&self.model);
            let mut ctx = Context::from(nobody.context(t));
            if let Ok(m) = self.render_parts(t, &nobody, &mut ctx, locale) {
                c.persona(&nobody, &m, &self.address(), 0);
            }
        }
        if let Some(c) = compliance {
            problems.extend(c.report(t, &span_of));
        }
        self.sender_problems(t, personas, &mut problems);
        // No persona: render the literal parts once, with no contact data.
        if personas.is_empty() {
            self.check_headers_without_personas(t, &span_of, &mut problems);
        }
        (messages, problems)
    }

    /// The workspace's postal address (blank when there is none).
    fn address(&self) -> String {
        self.model
            .workspace
            .get("address")
            .cloned()
            .unwrap_or_default()
    }

    /// Whether `t` gets the rendered compliance checks: a marketing email
    /// whose HTML uses `{{unsubscribe_url}}` somewhere (E0515 reports one
    /// that does not; these checks would only echo it).
    fn compliance_applies(&self, t: &TemplateInfo) -> bool {
        compliance::applies(t)
            && !self.problems.iter().any(|p| {
                p.kind == ProblemKind::MissingUnsubscribe
                    && p.secondary.iter().any(|(s, _)| *s == t.name_span)
            })
    }

    /// Whether the checker already reports a line break in the header literal.
    fn literal_break(&self, t: &TemplateInfo, attr: &str) -> bool {
        t.body(attr).is_some_and(
            |b| matches!(&b.value, BodyValue::Inline { text, .. } if text.contains(['\n', '\r'])),
        )
    }

    fn check_headers_without_personas(
        &self,
        t: &TemplateInfo,
        span_of: &dyn Fn(&str) -> Span,
        problems: &mut Vec<TemplateProblem>,
    ) {
        let empty = PersonaInfo {
            name: String::new(),
            doc: None,
            negative: false,
            base: serde_json::Map::new(),
            events: Vec::new(),
            locale: None,
        };
        let Ok(ctx) = Context::wraps(empty.context(t)) else {
            return;
        };
        for attr in ["subject", "preheader", "title"] {
            if t.body(attr).is_none() || self.literal_break(t, attr) {
                continue;
            }
            let out = helpers::render(&self.plain, &body_key(&t.name, attr), &ctx);
            if out.is_ok_and(|s| s.contains(['\n', '\r'])) {
                problems.push(
                    TemplateProblem::new(
                        ProblemKind::HeaderLineBreak,
                        span_of(attr),
                        format!("the {attr} of `{}` contains a line break", t.name),
                        "renders with a line break",
                    )
                    .help(format!("a {attr} is a single line: remove the line breaks")),
                );
            }
        }
    }

    /// The preview files of `relance build`, relative to the output folder:
    /// `preview/<template>/<persona>.html` (a standalone page), `.txt` (the
    /// email text part), `.json` (every rendered field, sorted keys),
    /// `preview/persona/<persona>.html` (each persona's data) and
    /// `preview/index.html`, which links to the flow pages of
    /// [`flow_pages`]. The same inputs give the same bytes. Also returns
    /// every problem (as [`RenderProject::check`]). The pages' stable ids
    /// and classes are listed in `src/render/preview.rs`.
    /// Evaluates what each persona's preview page shows of the plan
    /// (segments, `expect` lines, scenarios it would enter). Called before
    /// the previews are rendered; without it persona pages leave that part
    /// out. The names must resolve (no language errors).
    pub fn init_facts(&self, sources: &SourceMap, files: &[crate::syntax::ast::File], now: i64) {
        self.facts
            .get_or_init(|| preview::persona_facts(sources, files, now));
    }

    pub fn previews(&self) -> (BTreeMap<String, Vec<u8>>, Vec<TemplateProblem>) {
        let mut cache = RenderCache::default();
        let (files, problems) = self.previews_cached(&mut cache);
        // The cache holds the other reference to each file.
        drop(cache);
        (files.into_files(), problems)
    }

    /// [`RenderProject::previews`], rendering again only the templates
    /// whose fingerprint changed since a build that used `cache` (the
    /// persona pages and the index, which show every message, are always
    /// made anew). The files are shared with the cache.
    pub fn previews_cached(&self, cache: &mut RenderCache) -> (PreviewFiles, Vec<TemplateProblem>) {
        let (templates, personas) = (self.sorted_templates(), self.sorted_personas());
        let todo: Vec<&TemplateInfo> = templates
            .iter()
            .copied()
            .filter(|t| !matches!(cache.previews.get(&t.name), Some((k, _)) if *k == self.preview_key(t)))
            .collect();
        cache.stats.rendered = todo.len();
        cache.stats.render_reused = templates.len() - todo.len();
        let rendered = self.render_some(&todo, &personas, false, true);
        for (t, (mut messages, problems)) in todo.iter().zip(rendered) {
            let withheld = consent::withheld(t, self.facts.get());
            consent::drop_withheld(&mut messages, &withheld);
            if let Some((_, old)) = cache.previews.remove(&t.name) {
                for k in &old.files {
                    cache.site.remove(k);
                }
            }
            let files = self.preview_files(&messages);
            let mut rows = String::new();
            let refs: Vec<&RenderedMessage> = messages.iter().collect();
            if refs.is_empty() && !withheld.is_empty() && !self.broken.contains(&t.name) {
                consent::index_row(t, &withheld, true, &mut rows);
            } else {
                preview::index_rows(t, &refs, self.broken.contains(&t.name), &mut rows);
                consent::index_row(t, &withheld, false, &mut rows);
            }
            let persona_rows = messages.iter().map(preview::persona_row).collect();
            let entry = TemplatePreviews {
                messages,
                rows,
                persona_rows,
                files: files.iter().map(|(k, _)| k.clone()).collect(),
                problems,
            };
            for (k, v) in files {
                cache.site.insert(&k, v);
            }
            cache
                .previews
                .insert(t.name.clone(), (self.preview_key(t), entry));
        }
        let gone: Vec<String> = cache
            .previews
            .keys()
            .filter(|name| !self.keys.contains_key(*name))
            .cloned()
            .collect();
        for name in gone {
            if let Some((_, old)) = cache.previews.remove(&name) {
                for k in &old.files {
                    cache.site.remove(k);
                }
            }
        }
        // The persona pages and the index need every message: they are
        // moved out of the cache and back rather than copied.
        let mut problems = self.problems.clone();
        let mut messages = Vec::new();
        let mut counts = Vec::with_capacity(templates.len());
        for t in &templates {
            let entry = cache.previews.get_mut(&t.name).map(|(_, e)| e);
            counts.push(entry.map_or(0, |e| {
                problems.extend(e.problems.iter().cloned());
                let n = e.messages.len();
                messages.append(&mut e.messages);
                n
            }));
        }
        let mut files = cache.site.clone();
        // Each persona's rows, in template order, kept with the previews.
        // (The messages were moved out of the entries, `counts` apiece.)
        let mut rows: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        let mut offset = 0;
        for (t, n) in templates.iter().zip(&counts) {
            if let Some((_, e)) = cache.previews.get(&t.name) {
                for (m, row) in messages[offset..offset + n].iter().zip(&e.persona_rows) {
                    rows.entry(m.persona.as_str()).or_default().push(row);
                }
            }
            offset += n;
        }
        for p in &personas {
            let mine = rows.get(p.name.as_str()).map(Vec::as_slice).unwrap_or(&[]);
            files.insert(
                &format!("preview/persona/{}.html", names::page_name(&p.name)),
                Arc::new(
                    preview::persona_page(
                        p,
                        &self.model,
                        &personas,
                        mine,
                        self.facts.get().and_then(|f| f.get(&p.name)),
                    )
                    .into_bytes(),
                ),
            );
        }
        // Each template's rows are kept with its previews.
        let index = preview::index_with(&self.model, messages.len(), &mut |t, out| match cache
            .previews
            .get(&t.name)
        {
            Some((_, e)) => out.push_str(&e.rows),
            None => preview::index_rows(t, &[], self.broken.contains(&t.name), out),
        });
        files.insert("preview/index.html", Arc::new(index.into_bytes()));
        let mut back = messages.into_iter();
        for (t, n) in templates.iter().zip(counts) {
            if let Some((_, e)) = cache.previews.get_mut(&t.name) {
                e.messages = back.by_ref().take(n).collect();
            }
        }
        problem::sort_problems(&mut problems);
        (files, problems)
    }

    /// The `.html`, `.txt` and `.json` previews of one template's messages.
    fn preview_files(&self, messages: &[RenderedMessage]) -> Vec<(String, Arc<Vec<u8>>)> {
        // The personas this template was rendered for (the switcher).
        let others: Vec<&PersonaInfo> = messages
            .iter()
            .filter_map(|m| self.model.persona(&m.persona))
            .collect();
        let mut files = Vec::new();
        for m in messages {
            let Some(p) = self.model.persona(&m.persona) else {
                continue;
            };
            let base = format!(
                "preview/{}/{}",
                names::page_name(&m.template),
                names::page_name(&m.persona)
            );
            files.push((
                format!("{base}.html"),
                Arc::new(preview::page(m, p, &self.model, &others).into_bytes()),
            ));
            if let Some(text) = &m.text {
                files.push((format!("{base}.txt"), Arc::new(text.clone().into_bytes())));
            }
            files.push((
                format!("{base}.json"),
                Arc::new(m.to_json_string().into_bytes()),
            ));
        }
        files
    }
}

/// The partials of `files` (project-relative path → text; those under
/// [`PARTIALS_DIR`]) that the Handlebars sources `texts` use, directly or
/// through other partials: name → path. What the plan carries
/// (`Plan::partials`).
pub(crate) fn partials_used<'a>(
    texts: impl IntoIterator<Item = &'a str>,
    files: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let prefix = format!("{PARTIALS_DIR}/");
    let parsed: BTreeMap<&str, (&String, hbs::Parsed)> = files
        .iter()
        .filter_map(|(path, text)| {
            let name = path
                .strip_prefix(&prefix)?
                .strip_suffix(".hbs")
                .filter(|n| !n.is_empty())?;
            Some((name, (path, hbs::parse(text))))
        })
        .collect();
    let lookup = |n: &str| parsed.get(n).map(|(_, p)| p.nodes.as_slice());
    let mut reached = BTreeSet::new();
    for text in texts {
        if text.contains("{{") {
            collect_reached(&hbs::parse(text).nodes, &lookup, &mut reached);
        }
    }
    reached
        .into_iter()
        .filter_map(|n| {
            let (path, _) = parsed.get(n.as_str())?;
            Some((n, (*path).clone()))
        })
        .collect()
}

/// The file partials reached from `nodes`, transitively; `partial` gives
/// the nodes of a partial by name (`None`: no such file).
fn collect_reached<'n>(
    nodes: &[hbs::Node],
    partial: &dyn Fn(&str) -> Option<&'n [hbs::Node]>,
    out: &mut BTreeSet<String>,
) {
    let mut todo: Vec<&[hbs::Node]> = vec![nodes];
    while let Some(ns) = todo.pop() {
        for n in ns {
            match n {
                hbs::Node::Partial { target, block, .. } => {
                    if let hbs::PartialTarget::Name(name, _) = target
                        && let Some(nodes) = partial(name)
                        && out.insert(name.clone())
                    {
                        todo.push(nodes);
                    }
                    if let Some(b) = block {
                        todo.push(b);
                    }
                }
                hbs::Node::Block { body, arms, .. } => {
                    todo.push(body);
                    for a in arms {
                        todo.push(&a.body);
                    }
                }
                hbs::Node::Inline { body, .. } => todo.push(body),
                _ => {}
            }
        }
    }
}

static NO_TRIGGER: BTreeSet<String> = BTreeSet::new();

/// See [`RenderProject::handlebars_inputs`].
#[derive(Clone, Debug)]
pub struct HandlebarsInputs {
    /// The render context, as JSON text.
    pub context: String,
    /// The context URL templates are rendered with (declared links).
    pub url_context: String,
    /// (`link:NAME` or `url`, Handlebars source) of each link or webhook
    /// URL that is a template; values are percent-encoded (RFC 3986).
    pub urls: Vec<(String, String)>,
    /// (attribute, escaping mode, Handlebars source) of each body.
    pub bodies: Vec<(String, Mode, String)>,
    /// (name, Handlebars source) of each partial.
    pub partials: Vec<(String, String)>,
    /// The contact field that holds a time zone, for `date`.
    pub timezone_field: Option<String>,
    /// The workspace's time zone (`UTC` when it has none).
    pub timezone: String,
}

/// A render context as JSON text, with `links` in declaration order (a
/// JSON object's keys keep their order in JavaScript).
fn context_text(ctx: &Json, links: &[(String, String)]) -> String {
    let Json::Object(map) = ctx else {
        return ctx.to_string();
    };
    let mut out = String::from("{");
    for (i, (k, v)) in map.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&Json::String(k.clone()).to_string());
        out.push(':');
        if k == "links" {
            out.push('{');
            for (j, (n, _)) in links.iter().enumerate() {
                if j > 0 {
                    out.push(',');
                }
                out.push_str(&Json::String(n.clone()).to_string());
                out.push(':');
                out.push_str(&v.get(n).unwrap_or(&Json::Null).to_string());
            }
            out.push('}');
        } else {
            out.push_str(&v.to_string());
        }
    }
    out.push('}');
    out
}

/// Each template's link names in declaration order (`{{#each links}}`).
fn link_orders(model: &Model) -> HashMap<String, Vec<String>> {
    model
        .templates
        .iter()
        .map(|t| {
            (
                t.name.clone(),
                t.links.iter().map(|(n, _)| n.clone()).collect(),
            )
        })
        .collect()
}

/// What a context's rendering can depend on besides values: which values
/// are present. A context holding a line break or a `%` in a value is a
/// shape of its own (`unique`).
/// What a template's bodies read of the render context's root, gathered
/// from their analyses.
#[derive(Default)]
struct Reads {
    names: BTreeSet<String>,
    any: bool,
}

impl Reads {
    fn add(&mut self, outcome: &analyze::Outcome) {
        // A broken body is not rendered, but say "any" rather than reason
        // about what it would have read.
        self.any |= outcome.reads_root || outcome.broken;
        self.names.extend(outcome.roots.iter().cloned());
    }

    /// The names, with the time zone field that `{{date}}` reads on its
    /// own; `None` for any.
    fn finish(mut self, model: &Model) -> Option<Arc<BTreeSet<String>>> {
        if self.any {
            return None;
        }
        self.names.extend(model.tz_field.iter().cloned());
        // The same for every persona of a template: they tell no one apart
        // (and the context keeps the last template's `links`).
        self.names.remove("links");
        self.names.remove("workspace");
        Some(Arc::new(self.names))
    }
}

/// What one rendering found that stands for personas alike (see
/// `render_template_in`): the headers with a line break, and the SMS
/// length when over one segment.
type Alike = (Vec<&'static str>, Option<(usize, SmsEncoding)>);

/// A hash of the values of the root's names `only` (whole values, unlike
/// the shapes).
fn values_hash(data: &serde_json::Value, only: &BTreeSet<String>) -> u64 {
    use std::hash::{Hash, Hasher};
    fn walk(v: &serde_json::Value, h: &mut std::collections::hash_map::DefaultHasher) {
        match v {
            serde_json::Value::Null => 0u8.hash(h),
            serde_json::Value::Bool(b) => (1u8, b).hash(h),
            serde_json::Value::Number(n) => (2u8, n.to_string()).hash(h),
            serde_json::Value::String(s) => (3u8, s).hash(h),
            serde_json::Value::Array(xs) => {
                (4u8, xs.len()).hash(h);
                xs.iter().for_each(|x| walk(x, h));
            }
            serde_json::Value::Object(m) => {
                (5u8, m.len()).hash(h);
                for (k, x) in m {
                    k.hash(h);
                    walk(x, h);
                }
            }
        }
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    if let Some(m) = data.as_object() {
        for (k, v) in root_entries(m, Some(only)) {
            k.hash(&mut h);
            walk(v, &mut h);
        }
    }
    h.finish()
}

/// The entries of the render context's root that a template can read:
/// `only` those names (in their order) when its analysis knows them, else
/// all.
fn root_entries<'d>(
    data: &'d serde_json::Map<String, serde_json::Value>,
    only: Option<&'d BTreeSet<String>>,
) -> Box<dyn Iterator<Item = (&'d String, &'d serde_json::Value)> + 'd> {
    match only {
        Some(names) => Box::new(names.iter().filter_map(|k| data.get_key_value(k))),
        None => Box::new(data.iter()),
    }
}

fn context_shape(data: &serde_json::Value, only: Option<&BTreeSet<String>>, unique: usize) -> u64 {
    use std::hash::{Hash, Hasher};
    fn walk(
        v: &serde_json::Value,
        path: &mut String,
        h: &mut std::collections::hash_map::DefaultHasher,
    ) -> bool {
        match v {
            serde_json::Value::Object(m) => {
                let mut special = false;
                for (k, x) in m {
                    if x.is_null() {
                        continue;
                    }
                    let len = path.len();
                    path.push('.');
                    path.push_str(k);
                    path.hash(h);
                    special |= walk(x, path, h);
                    path.truncate(len);
                }
                special
            }
            serde_json::Value::Array(xs) => {
                xs.is_empty().hash(h);
                xs.iter().any(|x| walk(x, path, h))
            }
            serde_json::Value::String(s) => s.contains(['\n', '\r', '%']),
            _ => false,
        }
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    let special = match data.as_object() {
        Some(m) => {
            // The root's entries, as `walk` visits an object's.
            let mut special = false;
            let mut path = String::new();
            for (k, x) in root_entries(m, only) {
                if x.is_null() {
                    continue;
                }
                path.clear();
                path.push('.');
                path.push_str(k);
                path.hash(&mut h);
                special |= walk(x, &mut path, &mut h);
            }
            special
        }
        None => walk(data, &mut String::new(), &mut h),
    };
    if special {
        (u64::MAX - unique as u64).hash(&mut h);
    }
    h.finish()
}

/// A compiled body and a context (see [`RenderProject::prepare`]).
pub struct Prepared<'a> {
    registry: &'a Handlebars<'static>,
    key: String,
    context: Context,
}

impl Prepared<'_> {
    pub fn render(&self) -> Result<String, String> {
        helpers::render(self.registry, &self.key, &self.context)
    }
}
