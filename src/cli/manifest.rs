//! The project manifest, `relance.toml`: it marks a project's root (every
//! command walks up from the path it is given to the nearest one, as cargo
//! does with `Cargo.toml`) and holds the settings users would otherwise
//! repeat on every command. Flags on the command line override it.
//!
//! ```toml
//! include = ["**/*.camp"]        # which .camp files belong to the project
//! exclude = ["drafts/**"]
//! build   = "build"              # the build folder, relative to the root
//! now     = "2026-11-01T00:00:00Z"   # default `--now` (check, build, render, watch)
//! editor  = "vscode://file/{path}:{line}:{column}"
//!
//! [run]                          # defaults of `relance run`
//! contacts = "data/contacts.jsonl"
//! events   = "data/events.jsonl"
//! from     = "2026-11-01T00:00:00Z"
//! until    = "2026-12-15T00:00:00Z"
//! ```
//!
//! The keys and their meaning are documented in `docs/manifest.md`.

use std::fs;
use std::ops::Range;
use std::path::{Component, Path, PathBuf};

use toml::de::{DeTable, DeValue};

use super::load::LoadError;
use crate::diagnostics::{Code, Diagnostic, FileId, Problems, SourceFile, SourceMap, Span};

/// The manifest's file name.
pub const MANIFEST: &str = "relance.toml";

/// A manifest larger than this is refused before it is read.
const MAX_MANIFEST_BYTES: u64 = 1 << 20;

/// Where a command's project is: its root and, when there is one, the text
/// of its manifest.
#[derive(Debug, Clone)]
pub struct Located {
    /// The project folder, named as the user would (`campaigns`, `..`).
    pub root: PathBuf,
    /// The text of `ROOT/relance.toml`, when the project has one.
    pub manifest: Option<String>,
    /// A lone `.camp` file given on the command line, outside any project
    /// with a manifest: the project is that file alone, as before manifests.
    pub single: Option<PathBuf>,
}

impl Located {
    /// Where the manifest is (or would be).
    pub fn manifest_path(&self) -> PathBuf {
        self.root.join(MANIFEST)
    }

    /// The manifest's settings and problems, the manifest added to `sources`
    /// (so diagnostics point into it); defaults when there is none.
    pub fn settings(&self, sources: &mut SourceMap) -> (Manifest, Problems) {
        match &self.manifest {
            None => (Manifest::default(), Problems::new()),
            Some(text) => {
                let id = sources.add(SourceFile::template(MANIFEST, text.as_str()));
                Manifest::parse(text, id)
            }
        }
    }
}

/// `rel` below the project root `root`, written as the user would:
/// `build/plan.json` rather than `./build/plan.json`.
pub fn under(root: &Path, rel: impl AsRef<Path>) -> PathBuf {
    if root == Path::new(".") || root.as_os_str().is_empty() {
        rel.as_ref().to_path_buf()
    } else {
        root.join(rel)
    }
}

/// Finds the project of `path` (a folder or a `.camp` file): the nearest
/// folder at or above it that holds a `relance.toml`; without one, the
/// folder given (or the lone file) is the project, as before manifests.
pub fn locate(path: &Path) -> Result<Located, LoadError> {
    let meta = fs::metadata(path).map_err(|e| {
        LoadError(format!(
            "cannot read `{}`: {}",
            path.display(),
            super::load::io_reason(&e)
        ))
    })?;
    let start = if meta.is_dir() {
        path.to_path_buf()
    } else {
        match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    };
    let absolute = fs::canonicalize(&start).unwrap_or_else(|_| start.clone());
    let mut ups = 0usize;
    let mut dir: Option<&Path> = Some(absolute.as_path());
    while let Some(d) = dir {
        let candidate = d.join(MANIFEST);
        if candidate.is_file() {
            let root = lexical_up(&start, ups);
            return Ok(Located {
                manifest: Some(read_manifest(&root.join(MANIFEST))?),
                root,
                single: None,
            });
        }
        ups += 1;
        dir = d.parent();
    }
    if meta.is_dir() {
        Ok(Located {
            root: path.to_path_buf(),
            manifest: None,
            single: None,
        })
    } else {
        let root = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok(Located {
            root,
            manifest: None,
            single: Some(path.to_path_buf()),
        })
    }
}

/// The message when a folder without a manifest (here or above) holds
/// other projects: checking it as one project would mix them (and every
/// test fixture of a repository), so the command names them instead.
pub fn not_a_project(root: &Path, projects: &[String]) -> String {
    let shown = |p: &String| {
        if root == Path::new(".") {
            p.clone()
        } else {
            format!("{}/{p}", root.display())
        }
    };
    let mut projects = projects.to_vec();
    projects.sort();
    let mut names: Vec<String> = projects.iter().take(5).map(shown).collect();
    if projects.len() > 5 {
        names.push(format!("and {} more", projects.len() - 5));
    }
    let first = shown(&projects[0]);
    let create = if root == Path::new(".") {
        MANIFEST.to_string()
    } else {
        root.join(MANIFEST).display().to_string()
    };
    format!(
        "`{}` is not a relance project (no {MANIFEST} in it or above), but it holds projects: {}; give one of them as the path (e.g. `relance check {first}`, `relance build {first}`), or create `{create}` to make this folder a project",
        root.display(),
        names.join(", "),
    )
}

/// `start` with `ups` levels removed, as the user would write it:
/// `campaigns/templates` up 1 is `campaigns`, `.` up 1 is `..`.
fn lexical_up(start: &Path, ups: usize) -> PathBuf {
    let mut parts: Vec<Component> = start
        .components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect();
    let mut extra = 0;
    for _ in 0..ups {
        match parts.last() {
            Some(Component::Normal(_)) => {
                parts.pop();
            }
            Some(Component::RootDir) | Some(Component::Prefix(_)) => {}
            _ => extra += 1,
        }
    }
    let mut out: PathBuf = parts.iter().collect();
    for _ in 0..extra {
        out.push("..");
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

fn read_manifest(path: &Path) -> Result<String, LoadError> {
    let fail = |why: String| LoadError(format!("cannot read `{}`: {why}", path.display()));
    let meta = fs::metadata(path).map_err(|e| fail(super::load::io_reason(&e)))?;
    if !meta.is_file() {
        return Err(fail("not a regular file".to_string()));
    }
    if meta.len() > MAX_MANIFEST_BYTES {
        return Err(fail(format!(
            "{} bytes; a manifest is at most 1 MiB (it holds a few settings)",
            meta.len()
        )));
    }
    let bytes = fs::read(path).map_err(|e| fail(super::load::io_reason(&e)))?;
    String::from_utf8(bytes).map_err(|_| fail("not valid UTF-8; save it as UTF-8 text".to_string()))
}

/// The settings of a manifest (every one optional).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Manifest {
    /// `.camp` files that belong to the project (default: all of them).
    pub include: Vec<Glob>,
    /// `.camp` files and folders left out.
    pub exclude: Vec<Glob>,
    /// The build folder, relative to the root (default `build`).
    pub build: Option<String>,
    /// Default `--now` of check, build, render and watch (unix seconds),
    /// with the text as written.
    pub now: Option<(i64, String)>,
    /// The editor link of the preview error panel, with `{path}`, `{line}`
    /// and `{column}` placeholders.
    pub editor: Option<String>,
    /// Defaults of `relance run`.
    pub run: RunDefaults,
    /// `[warehouse.*]`: the user's tables standing for the canonical
    /// tables of `relance sql` and `relance segments --database`
    /// (`docs/warehouse.md`).
    pub warehouse: crate::sql::Mapping,
}

/// The `[run]` table: paths relative to the project root, times as written.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunDefaults {
    pub contacts: Option<String>,
    pub events: Option<String>,
    pub from: Option<String>,
    pub until: Option<String>,
}

const TOP_KEYS: &[&str] = &[
    "include",
    "exclude",
    "build",
    "now",
    "editor",
    "run",
    "warehouse",
];
const WAREHOUSE_KEYS: &[&str] = &["contacts", "events", "lists", "tags"];
const RUN_KEYS: &[&str] = &["contacts", "events", "from", "until"];
const EDITOR_PLACEHOLDERS: &[&str] = &["path", "line", "column"];

impl Manifest {
    /// The build folder's name relative to the root (`build` by default).
    pub fn build_dir(&self) -> &str {
        self.build.as_deref().unwrap_or("build")
    }

    /// The editor link of a place, from the `editor` setting: `{path}`,
    /// `{line}` and `{column}` replaced (the path as given, typically
    /// absolute); `None` without the setting.
    pub fn editor_link(&self, path: &str, line: usize, column: usize) -> Option<String> {
        let template = self.editor.as_deref()?;
        let mut out = String::with_capacity(template.len() + path.len());
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            let close = after.find('}').unwrap_or(after.len());
            match &after[..close] {
                "path" => out.push_str(path),
                "line" => out.push_str(&line.to_string()),
                "column" => out.push_str(&column.to_string()),
                other => {
                    out.push('{');
                    out.push_str(other);
                    out.push('}');
                }
            }
            rest = after.get(close + 1..).unwrap_or("");
        }
        out.push_str(rest);
        Some(out)
    }

    /// Whether the `.camp` file at project-relative `rel` belongs to the project.
    pub fn includes(&self, rel: &str) -> bool {
        (self.include.is_empty() || self.include.iter().any(|g| g.matches(rel)))
            && !self.exclude.iter().any(|g| g.matches(rel))
    }

    /// Whether the folder at project-relative `rel` is left out as a whole
    /// (an exclude naming it, `drafts` or `drafts/**`, or the build folder).
    pub fn skips_folder(&self, rel: &str) -> bool {
        let build = self.build_dir().trim_end_matches('/');
        rel == build
            || self.exclude.iter().any(|g| {
                g.matches(rel)
                    || g.text
                        .strip_suffix("/**")
                        .is_some_and(|p| glob_match(p, rel))
            })
    }

    /// Reads a manifest; problems point into file `file`.
    pub fn parse(text: &str, file: FileId) -> (Manifest, Problems) {
        let mut m = Manifest::default();
        let mut problems = Problems::new();
        let span = |r: Range<usize>| Span::new(file, r.start, r.end.max(r.start));
        let table = match DeTable::parse(text) {
            Ok(t) => t,
            Err(e) => {
                let r = e.span().unwrap_or(0..0);
                let at = if r.is_empty() && r.start < text.len() {
                    r.start..r.start + text[r.start..].chars().next().map_or(1, char::len_utf8)
                } else {
                    r
                };
                let message = e.message().trim().to_string();
                problems.push(
                    Diagnostic::new(Code::E0901, format!("{MANIFEST} is not valid TOML"))
                        .at(span(at), message)
                        .help("write `key = value` lines (strings in double quotes) and `[run]` for the run table; docs/manifest.md lists every key"),
                );
                return (m, problems);
            }
        };
        let mut bad = |r: Range<usize>, label: &str, help: String| {
            problems.push(
                Diagnostic::new(Code::E0902, format!("bad value in {MANIFEST}"))
                    .at(span(r), label.to_string())
                    .help(help),
            );
        };
        let mut unknown = Vec::new();
        for (key, value) in table.get_ref() {
            let name: &str = key.get_ref();
            let r = value.span();
            match name {
                "include" | "exclude" => {
                    let Some(globs) = globs_of(value.get_ref(), r.clone(), &mut bad) else {
                        continue;
                    };
                    if name == "include" {
                        m.include = globs;
                    } else {
                        m.exclude = globs;
                    }
                }
                "build" => {
                    if let Some(s) = string_of(
                        value.get_ref(),
                        r.clone(),
                        "a folder name such as \"build\"",
                        &mut bad,
                    ) {
                        if relative_path_ok(&s) {
                            m.build = Some(s.trim_end_matches('/').to_string());
                        } else {
                            bad(
                                r,
                                "not a folder inside the project",
                                format!(
                                    "`build` is a folder relative to the project root, such as \"build\" or \"out/site\"; not `{s}`"
                                ),
                            );
                        }
                    }
                }
                "now" => {
                    if let Some(s) = string_of(
                        value.get_ref(),
                        r.clone(),
                        "an RFC 3339 timestamp in quotes",
                        &mut bad,
                    ) {
                        match s.parse::<jiff::Timestamp>() {
                            Ok(t) => m.now = Some((t.as_second(), s)),
                            Err(_) => bad(r, "not an RFC 3339 timestamp", "write a timestamp with its offset, in quotes: now = \"2026-11-01T00:00:00Z\"".to_string()),
                        }
                    }
                }
                "editor" => {
                    if let Some(s) = string_of(
                        value.get_ref(),
                        r.clone(),
                        "a URL template in quotes",
                        &mut bad,
                    ) {
                        match editor_problem(&s) {
                            None => m.editor = Some(s),
                            Some(why) => bad(r, &why, "write a URL with `{path}` and optionally `{line}` and `{column}`, e.g. editor = \"vscode://file/{path}:{line}:{column}\"".to_string()),
                        }
                    }
                }
                "run" => {
                    let DeValue::Table(run) = value.get_ref() else {
                        bad(r, "`run` is a table", "write the run defaults under a `[run]` line: contacts, events, from, until".to_string());
                        continue;
                    };
                    for (k, v) in run {
                        let kname: &str = k.get_ref();
                        let vr = v.span();
                        if !RUN_KEYS.contains(&kname) {
                            unknown.push((kname.to_string(), k.span(), RUN_KEYS, "[run]"));
                            continue;
                        }
                        let what = if matches!(kname, "from" | "until") {
                            "an RFC 3339 timestamp in quotes"
                        } else {
                            "a file path in quotes, relative to the project root"
                        };
                        let Some(s) = string_of(v.get_ref(), vr.clone(), what, &mut bad) else {
                            continue;
                        };
                        match kname {
                            "from" | "until" => {
                                if crate::run::input::parse_timestamp(&s).is_none() {
                                    bad(
                                        vr,
                                        "not an RFC 3339 timestamp",
                                        format!(
                                            "write a timestamp with its offset, in quotes: {kname} = \"2026-11-01T00:00:00Z\""
                                        ),
                                    );
                                    continue;
                                }
                                if kname == "from" {
                                    m.run.from = Some(s)
                                } else {
                                    m.run.until = Some(s)
                                }
                            }
                            _ => {
                                if s.is_empty() || Path::new(&s).is_absolute() {
                                    bad(
                                        vr,
                                        "not a path relative to the project root",
                                        format!(
                                            "write the file's path from the project root, e.g. {kname} = \"data/{kname}.jsonl\""
                                        ),
                                    );
                                    continue;
                                }
                                if kname == "contacts" {
                                    m.run.contacts = Some(s)
                                } else {
                                    m.run.events = Some(s)
                                }
                            }
                        }
                    }
                    if let (Some(from), Some(until)) = (&m.run.from, &m.run.until)
                        && crate::run::input::parse_timestamp(until)
                            <= crate::run::input::parse_timestamp(from)
                    {
                        let r = run
                            .iter()
                            .find(|(k, _)| k.get_ref() == "until")
                            .map_or(r.clone(), |(_, v)| v.span());
                        bad(
                            r,
                            "the window is empty",
                            format!("`until` must be after `from` ({from})"),
                        );
                        m.run.until = None;
                    }
                }
                "warehouse" => {
                    let DeValue::Table(w) = value.get_ref() else {
                        bad(r, "`warehouse` is a table", "write `[warehouse.contacts]` (and `.events`, `.lists`, `.tags`) tables; docs/warehouse.md".to_string());
                        continue;
                    };
                    for (k, v) in w {
                        let kname: &str = k.get_ref();
                        if !WAREHOUSE_KEYS.contains(&kname) {
                            unknown.push((
                                kname.to_string(),
                                k.span(),
                                WAREHOUSE_KEYS,
                                "[warehouse]",
                            ));
                            continue;
                        }
                        let events = kname == "events";
                        let Some(t) = table_map(v.get_ref(), v.span(), events, &mut bad) else {
                            continue;
                        };
                        let (t, per_event) = t;
                        match kname {
                            "contacts" => m.warehouse.contacts = t,
                            "lists" => m.warehouse.lists = t,
                            "tags" => m.warehouse.tags = t,
                            _ => {
                                m.warehouse.events = t;
                                m.warehouse.event_tables = per_event;
                            }
                        }
                    }
                }
                _ => unknown.push((name.to_string(), key.span(), TOP_KEYS, "")),
            }
        }
        for (name, r, keys, table) in unknown {
            let hint = if table.is_empty() && RUN_KEYS.contains(&name.as_str()) {
                format!("`{name}` belongs under a `[run]` line; ")
            } else {
                crate::diagnostics::did_you_mean(&name, keys.iter().copied())
                    .map(|k| format!("did you mean `{k}`? "))
                    .unwrap_or_default()
            };
            let place = if table.is_empty() {
                "at the top level".to_string()
            } else {
                format!("in `{table}`")
            };
            problems.push(
                Diagnostic::new(Code::W0901, format!("unknown key `{name}` in {MANIFEST}"))
                    .at(span(r), "unknown key, ignored")
                    .help(format!(
                        "{hint}the keys {place} are {}; docs/manifest.md describes them",
                        keys.iter()
                            .map(|k| format!("`{k}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
            );
        }
        (m, problems)
    }
}

/// A `[warehouse.NAME]` table: `table = "schema.name"`, and every other
/// key (or a `columns = { … }` table) renames a canonical column. Under
/// `events`, a sub-table is the table of one event. `None` (after a
/// problem) when it is not a table.
#[allow(clippy::type_complexity)]
fn table_map(
    v: &DeValue,
    r: Range<usize>,
    events: bool,
    bad: &mut impl FnMut(Range<usize>, &str, String),
) -> Option<(
    Option<crate::sql::TableMap>,
    std::collections::BTreeMap<String, crate::sql::TableMap>,
)> {
    let DeValue::Table(t) = v else {
        bad(
            r,
            &format!("{} here", kind_of(v)),
            "write a table: `table = \"crm.customers\"` and `FIELD = \"column\"` lines".to_string(),
        );
        return None;
    };
    let mut map = crate::sql::TableMap::default();
    let mut per_event = std::collections::BTreeMap::new();
    let column = |k: &str,
                  v: &DeValue,
                  vr: Range<usize>,
                  map: &mut crate::sql::TableMap,
                  bad: &mut dyn FnMut(Range<usize>, &str, String)| {
        let mut b = |r: Range<usize>, l: &str, h: String| bad(r, l, h);
        if let Some(c) = string_of(v, vr.clone(), "a column name in quotes", &mut b) {
            if crate::sql::column_name_ok(&c) {
                map.columns.insert(k.to_string(), c);
            } else {
                bad(
                    vr,
                    "not a plain column name",
                    "a column name is letters, digits and `_`, starting with a letter".to_string(),
                );
            }
        }
    };
    for (k, val) in t {
        let kname: &str = k.get_ref();
        let vr = val.span();
        match (kname, val.get_ref()) {
            ("table", tv) => {
                if let Some(name) = string_of(tv, vr.clone(), "a table name in quotes", bad) {
                    if crate::sql::table_name_ok(&name) {
                        map.table = name;
                    } else {
                        bad(
                            vr,
                            "not a plain table name",
                            "write `schema.table` or `table`: letters, digits and `_`".to_string(),
                        );
                    }
                }
            }
            ("columns", DeValue::Table(cols)) => {
                for (ck, cv) in cols {
                    column(ck.get_ref(), cv.get_ref(), cv.span(), &mut map, bad);
                }
            }
            (event, DeValue::Table(_)) if events => {
                if let Some((Some(t), _)) = table_map(val.get_ref(), vr, false, bad) {
                    per_event.insert(event.to_string(), t);
                }
            }
            (k, v) => column(k, v, vr, &mut map, bad),
        }
    }
    if map.table.is_empty() && !(events && !per_event.is_empty() && map.columns.is_empty()) {
        bad(
            r,
            "no `table`",
            "name the table: `table = \"crm.customers\"`".to_string(),
        );
        return Some((None, per_event));
    }
    Some(((!map.table.is_empty()).then_some(map), per_event))
}

fn string_of(
    v: &DeValue,
    r: Range<usize>,
    what: &str,
    bad: &mut impl FnMut(Range<usize>, &str, String),
) -> Option<String> {
    match v {
        DeValue::String(s) => Some(s.to_string()),
        other => {
            bad(
                r,
                &format!("{} here", kind_of(other)),
                format!("this key takes {what}"),
            );
            None
        }
    }
}

fn kind_of(v: &DeValue) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "a number",
        DeValue::Float(_) => "a number",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "an unquoted date-time",
        DeValue::Array(_) => "a list",
        DeValue::Table(_) => "a table",
    }
}

fn globs_of(
    v: &DeValue,
    r: Range<usize>,
    bad: &mut impl FnMut(Range<usize>, &str, String),
) -> Option<Vec<Glob>> {
    let DeValue::Array(items) = v else {
        bad(
            r,
            &format!("{} here", kind_of(v)),
            "write a list of globs in quotes, e.g. [\"**/*.camp\"] or [\"drafts/**\"]".to_string(),
        );
        return None;
    };
    let mut out = Vec::new();
    for item in items {
        let ir = item.span();
        let DeValue::String(s) = item.get_ref() else {
            bad(
                ir,
                &format!("{} here", kind_of(item.get_ref())),
                "each glob is a string in quotes, e.g. \"drafts/**\"".to_string(),
            );
            continue;
        };
        match Glob::new(s) {
            Ok(g) => out.push(g),
            Err(why) => bad(ir, &why, "globs are paths relative to the project root with `*` (any characters but `/`), `**` (any folders) and `?` (one character), e.g. \"drafts/**\" or \"**/*_old.camp\"".to_string()),
        }
    }
    Some(out)
}

fn relative_path_ok(s: &str) -> bool {
    !s.is_empty()
        && !Path::new(s).is_absolute()
        && !s.starts_with('/')
        && s.split('/').all(|p| p != ".." && p != ".")
}

/// Why an editor URL template is refused, if it is.
fn editor_problem(s: &str) -> Option<String> {
    let mut rest = s;
    let mut has_path = false;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            return Some("a `{` without its `}`".to_string());
        };
        let name = &after[..close];
        if !EDITOR_PLACEHOLDERS.contains(&name) {
            return Some(format!("unknown placeholder `{{{name}}}`"));
        }
        has_path |= name == "path";
        rest = &after[close + 1..];
    }
    if !has_path {
        return Some("no `{path}` placeholder".to_string());
    }
    None
}

/// A path glob: `*` matches within a folder name, `**` any number of
/// folders, `?` one character; everything else literally. Paths are
/// project-relative with `/` separators.
#[derive(Debug, Clone, PartialEq)]
pub struct Glob {
    pub text: String,
}

impl Glob {
    pub fn new(text: &str) -> Result<Glob, String> {
        if text.is_empty() {
            return Err("an empty glob".to_string());
        }
        if text.starts_with('/') || Path::new(text).is_absolute() {
            return Err("an absolute path".to_string());
        }
        if let Some(c) = text
            .chars()
            .find(|c| matches!(c, '[' | ']' | '{' | '}' | '\\' | '!'))
        {
            return Err(format!("`{c}` is not supported in globs"));
        }
        if text.split('/').any(|p| p == ".." || p == ".") {
            return Err("`.` and `..` are not allowed in globs".to_string());
        }
        if text.len() > 256 || text.matches('*').count() > 12 {
            return Err("a glob this long or with this many `*`".to_string());
        }
        Ok(Glob {
            text: text.trim_end_matches('/').to_string(),
        })
    }

    pub fn matches(&self, path: &str) -> bool {
        glob_match(&self.text, path)
    }
}

fn glob_match(pat: &str, path: &str) -> bool {
    matches_bytes(pat.as_bytes(), path.as_bytes())
}

fn matches_bytes(pat: &[u8], s: &[u8]) -> bool {
    if pat == b"**" {
        return true;
    }
    if let Some(rest) = pat.strip_prefix(b"**/") {
        // Zero folders, or skip up to each `/`.
        if matches_bytes(rest, s) {
            return true;
        }
        return s
            .iter()
            .enumerate()
            .any(|(i, &c)| c == b'/' && matches_bytes(rest, &s[i + 1..]));
    }
    match pat.first() {
        None => s.is_empty(),
        Some(b'*') => {
            let rest = &pat[1..];
            for i in 0..=s.len() {
                if matches_bytes(rest, &s[i..]) {
                    return true;
                }
                if i < s.len() && s[i] == b'/' {
                    break;
                }
            }
            false
        }
        Some(b'?') => !s.is_empty() && s[0] != b'/' && matches_bytes(&pat[1..], &s[1..]),
        Some(&c) => !s.is_empty() && s[0] == c && matches_bytes(&pat[1..], &s[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> (Manifest, Vec<(Code, String)>) {
        let mut sources = SourceMap::new();
        let id = sources.add(SourceFile::template(MANIFEST, text));
        let (m, p) = Manifest::parse(text, id);
        let shown = p
            .iter()
            .map(|d| {
                let l = d.primary.as_ref().unwrap();
                let (line, col) = sources.get(id).line_col(l.span.start);
                (
                    d.code,
                    format!("{line}:{col} {} ({})", d.message, l.message),
                )
            })
            .collect();
        (m, shown)
    }

    #[test]
    fn editor_links_fill_the_placeholders() {
        let (m, problems) = parse("editor = \"vscode://file/{path}:{line}:{column}\"\n");
        assert!(problems.is_empty());
        assert_eq!(
            m.editor_link("/p/main.camp", 3, 7).as_deref(),
            Some("vscode://file//p/main.camp:3:7")
        );
        assert_eq!(Manifest::default().editor_link("/p", 1, 1), None);
    }

    #[test]
    fn globs_match_like_shells_do() {
        let g = |p: &str| Glob::new(p).unwrap();
        assert!(g("**/*.camp").matches("a.camp"));
        assert!(g("**/*.camp").matches("x/y/a.camp"));
        assert!(!g("*.camp").matches("x/a.camp"));
        assert!(g("drafts/**").matches("drafts/a/b.camp"));
        assert!(!g("drafts/**").matches("other/drafts.camp"));
        assert!(g("a/**/b.camp").matches("a/b.camp"));
        assert!(g("a/**/b.camp").matches("a/x/y/b.camp"));
        assert!(g("?.camp").matches("a.camp"));
        assert!(!g("?.camp").matches("ab.camp"));
        assert!(Glob::new("/abs").is_err());
        assert!(Glob::new("../up").is_err());
        assert!(Glob::new("[ab].camp").is_err());
    }

    #[test]
    fn every_setting_is_read() {
        let (m, problems) = parse(
            "include = [\"**/*.camp\"]\nexclude = [\"drafts/**\"]\nbuild = \"out\"\nnow = \"2026-11-01T00:00:00Z\"\neditor = \"vscode://file/{path}:{line}:{column}\"\n[run]\ncontacts = \"data/c.jsonl\"\nevents = \"data/e.jsonl\"\nfrom = \"2026-11-01T00:00:00Z\"\nuntil = \"2026-12-01T00:00:00Z\"\n",
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(m.build_dir(), "out");
        assert_eq!(m.now.as_ref().map(|n| n.0), Some(1_793_491_200));
        assert_eq!(
            m.editor.as_deref(),
            Some("vscode://file/{path}:{line}:{column}")
        );
        assert_eq!(m.run.contacts.as_deref(), Some("data/c.jsonl"));
        assert_eq!(m.run.until.as_deref(), Some("2026-12-01T00:00:00Z"));
        assert!(m.includes("a/b.camp"));
        assert!(!m.includes("drafts/b.camp"));
        assert!(m.skips_folder("drafts"));
        assert!(m.skips_folder("out"));
    }

    #[test]
    fn the_warehouse_maps_tables_and_columns() {
        let (m, problems) = parse(
            "[warehouse.contacts]\ntable = \"crm.customers\"\nid = \"customer_id\"\ncolumns = { country = \"pays\" }\n[warehouse.events.purchase]\ntable = \"shop.orders\"\nat = \"ordered_at\"\n[warehouse.tags]\ntable = \"x; DROP TABLE y\"\n[warehouse.lists]\ncontact = \"who\"\n[warehouse.segments]\n",
        );
        let w = &m.warehouse;
        let c = w.contacts.as_ref().unwrap();
        assert_eq!(c.table, "crm.customers");
        assert_eq!(c.columns["id"], "customer_id");
        assert_eq!(c.columns["country"], "pays");
        assert_eq!(w.event_tables["purchase"].columns["at"], "ordered_at");
        assert!(w.events.is_none());
        assert!(w.tags.is_none() && w.lists.is_none());
        assert!(
            problems
                .iter()
                .any(|(c, s)| *c == Code::E0902 && s.contains("not a plain table name")),
            "{problems:?}"
        );
        assert!(
            problems
                .iter()
                .any(|(c, s)| *c == Code::E0902 && s.contains("no `table`")),
            "{problems:?}"
        );
        assert!(
            problems
                .iter()
                .any(|(c, s)| *c == Code::W0901 && s.contains("`segments`")),
            "{problems:?}"
        );
    }

    #[test]
    fn unknown_keys_and_bad_values_point_at_their_line() {
        let (_, problems) = parse(
            "buld = \"out\"\nnow = 3\neditor = \"x://{file}\"\n[run]\nfrom = \"yesterday\"\nuntill = \"2026-12-01T00:00:00Z\"\n",
        );
        let text: Vec<String> = problems.iter().map(|(c, s)| format!("{c} {s}")).collect();
        assert!(
            text.iter()
                .any(|s| s.starts_with("W0901 1:1 unknown key `buld`")),
            "{text:#?}"
        );
        assert!(text.iter().any(|s| s.starts_with("E0902 2:7")), "{text:#?}");
        assert!(
            text.iter()
                .any(|s| s.starts_with("E0902 3:10") && s.contains("{file}")),
            "{text:#?}"
        );
        assert!(text.iter().any(|s| s.starts_with("E0902 5:8")), "{text:#?}");
        assert!(
            text.iter()
                .any(|s| s.starts_with("W0901 6:1 unknown key `untill`")),
            "{text:#?}"
        );
    }

    #[test]
    fn broken_toml_is_an_error_with_a_place() {
        let (_, problems) = parse("build = \"out\nnow = 1\n");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].0, Code::E0901);
        assert!(problems[0].1.starts_with("1:"), "{problems:?}");
    }

    #[test]
    fn the_root_is_named_as_the_user_would() {
        assert_eq!(
            lexical_up(Path::new("campaigns/templates"), 1),
            PathBuf::from("campaigns")
        );
        assert_eq!(lexical_up(Path::new("."), 1), PathBuf::from(".."));
        assert_eq!(lexical_up(Path::new("campaigns"), 1), PathBuf::from("."));
        assert_eq!(
            lexical_up(Path::new("campaigns"), 0),
            PathBuf::from("campaigns")
        );
    }
}
