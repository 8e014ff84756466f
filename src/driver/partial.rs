//! Checking what errors do not touch. The template checks (`render`) and
//! the persona checks (`plan` + `verify`) assume a project whose names all
//! resolve; when the language checks found errors, they run on the part of
//! the project that no error reaches, so that one typo in a segment does
//! not hide an unknown variable in an unrelated template.
//!
//! The analysis is explicit and conservative:
//!
//! 1. A declaration is *touched* when a label of an error lies inside it.
//!    A declaration that failed to parse is touched by name (its keyword
//!    and name are all that is known of it).
//! 2. A declaration that mentions the name of a touched declaration
//!    anywhere in its text (a word equal to the name, even inside a
//!    string) is touched too, transitively: this over-approximates every
//!    reference (segments, templates, lists, events, cadences,
//!    scenarios, personas' `expect` and `lists`).
//! 3. When the contact schema or the workspace is touched, nothing more is
//!    checked: every template and persona depends on them. The same when
//!    part of the project is unknown (an unreadable file, a syntax error
//!    outside a declaration) and no workspace is left.
//! 4. The rest is checked by the language checks again, on its own. Only
//!    when it has no error (its names all resolve) do the template and
//!    persona checks run on it; their diagnostics are all reported.
//!
//! What was skipped because of *another* declaration's errors is said with
//! `W0910`, one per template or persona (a declaration with errors of its
//! own needs no note: its errors are reported).

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::check;
use crate::diagnostics::{Code, Diagnostic, FileId, Problems, Severity, SourceMap, Span};
use crate::render::RenderProject;
use crate::syntax::ast::{self, BrokenDecl, DeclKind};

/// At most this many notes per kind (templates, personas); then a count.
const MAX_NOTES: usize = 20;

/// The declaration with errors behind a chain of mentions: noun, name.
type Root = Option<(String, String)>;

/// Why a declaration is left out.
#[derive(Clone)]
enum Why {
    /// An error lies inside it.
    Own,
    /// It mentions `name`, a `noun` left out; `root` is the declaration
    /// with errors behind it when `name` has none of its own.
    Needs {
        noun: String,
        name: String,
        root: Root,
    },
}

struct DeclAt<'a> {
    decl: &'a ast::Decl,
    file: usize,
    index: usize,
}

/// The template and persona problems of the part of the project that the
/// errors in `problems` do not reach, and notes saying what was skipped.
pub(super) fn check_the_rest(
    sources: &SourceMap,
    files: &[ast::File],
    problems: &Problems,
    templates: &BTreeMap<String, String>,
    now: i64,
) -> Problems {
    let mut out = Problems::new();
    let decls: Vec<DeclAt> = files
        .iter()
        .enumerate()
        .flat_map(|(file, f)| {
            f.decls
                .iter()
                .enumerate()
                .map(move |(index, decl)| DeclAt { decl, file, index })
        })
        .collect();
    // Nothing to skip, nothing to say.
    if !decls
        .iter()
        .any(|d| matches!(d.decl.kind, DeclKind::Template(_) | DeclKind::Persona(_)))
    {
        return out;
    }
    match left_out(sources, files, &decls, problems) {
        Err(reason) => {
            out.push(skipped_everything(&reason));
            out
        }
        Ok(why) => check_kept(sources, files, &decls, &why, templates, now, out),
    }
}

fn skipped_everything(reason: &str) -> Diagnostic {
    Diagnostic::new(
        Code::W0910,
        format!("template and persona checks skipped: {reason}"),
    )
    .help("fix the errors in this report; relance then checks the templates and personas too")
}

/// Which declarations are left out (by their rank in `decls`) and why, or
/// why nothing can be checked.
fn left_out(
    sources: &SourceMap,
    files: &[ast::File],
    decls: &[DeclAt],
    problems: &Problems,
) -> Result<HashMap<usize, Why>, String> {
    // Declarations of each file by start, to place a label.
    let mut by_file: HashMap<FileId, Vec<(u32, u32, usize)>> = HashMap::new();
    for (i, d) in decls.iter().enumerate() {
        let span = d.decl.span;
        by_file
            .entry(span.file)
            .or_default()
            .push((span.start, span.end, i));
    }
    for v in by_file.values_mut() {
        v.sort_unstable();
    }
    let place = |span: Span| -> Option<usize> {
        let v = by_file.get(&span.file)?;
        let at = v.partition_point(|&(start, _, _)| start <= span.start);
        let (start, end, i) = *v.get(at.checked_sub(1)?)?;
        (start <= span.start && span.start <= end).then_some(i)
    };
    let mut why: HashMap<usize, Why> = HashMap::new();
    // Part of the project is unknown: unreadable, or errors outside any
    // declaration that parsed.
    let mut unknown = files.iter().any(|f| f.unreadable);
    for d in problems.iter().filter(|d| d.severity() == Severity::Error) {
        let Some(primary) = &d.primary else {
            return Err(format!("{} ({})", d.message, d.code));
        };
        for label in std::iter::once(primary).chain(&d.secondary) {
            let in_camp = sources.get(label.span.file).camp;
            match place(label.span) {
                Some(i) => {
                    why.insert(i, Why::Own);
                }
                None if in_camp => unknown = true,
                // A label in a template file: that file's template is
                // touched through the `file("…")` diagnostics, or the
                // template checks report it again.
                None => {}
            }
        }
    }
    let broken: Vec<&BrokenDecl> = files.iter().flat_map(|f| &f.broken).collect();
    const KNOWN: &[&str] = &[
        "event", "list", "segment", "persona", "template", "scenario", "cadence", "pressure",
    ];
    for b in &broken {
        match b.keyword.as_str() {
            "contact" => return Err("the contact schema has errors".into()),
            "workspace" => return Err("the workspace has errors".into()),
            k if !KNOWN.contains(&k) || b.name.is_none() => unknown = true,
            _ => {}
        }
    }
    for (i, d) in decls.iter().enumerate() {
        if !why.contains_key(&i) {
            continue;
        }
        match d.decl.kind {
            DeclKind::Contact(_) => return Err("the contact schema has errors".into()),
            DeclKind::Workspace(_) => return Err("the workspace has errors".into()),
            _ => {}
        }
    }
    if unknown
        && !decls
            .iter()
            .enumerate()
            .any(|(i, d)| matches!(d.decl.kind, DeclKind::Workspace(_)) && !why.contains_key(&i))
    {
        return Err("part of the project could not be read, and the workspace with it".into());
    }

    // Who mentions which name.
    let mut names: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, d) in decls.iter().enumerate() {
        if let Some(n) = d.decl.kind.name() {
            names.entry(n.name.as_str()).or_default().push(i);
        }
    }
    let broken_names: HashMap<&str, &str> = broken
        .iter()
        .filter_map(|b| Some((b.name.as_deref()?, b.keyword.as_str())))
        .collect();
    let mut mentioned_by: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, d) in decls.iter().enumerate() {
        let own = d.decl.kind.name().map(|n| n.name.as_str());
        let mut seen = HashSet::new();
        for word in words(sources.text(d.decl.span)) {
            if Some(word) == own || !seen.insert(word) {
                continue;
            }
            if let Some((name, _)) = names.get_key_value(word) {
                mentioned_by.entry(name).or_default().push(i);
            } else if let Some((name, _)) = broken_names.get_key_value(word) {
                mentioned_by.entry(name).or_default().push(i);
            }
        }
    }
    // From every name left out, to those who mention it.
    let mut todo: Vec<(&str, String, Root)> = broken_names
        .iter()
        .map(|(n, k)| (*n, format!("{k} (it does not parse)"), None))
        .collect();
    for (i, d) in decls.iter().enumerate() {
        if why.contains_key(&i)
            && let Some(n) = d.decl.kind.name()
        {
            todo.push((n.name.as_str(), d.decl.kind.noun().to_string(), None));
        }
    }
    let mut done: HashSet<&str> = HashSet::new();
    while let Some((name, noun, root)) = todo.pop() {
        if !done.insert(name) {
            continue;
        }
        // Every declaration of a name declared twice goes too.
        for &i in names.get(name).into_iter().flatten() {
            why.entry(i).or_insert(Why::Own);
        }
        for &i in mentioned_by.get(name).into_iter().flatten() {
            if why.contains_key(&i) {
                continue;
            }
            why.insert(
                i,
                Why::Needs {
                    noun: noun.clone(),
                    name: name.to_string(),
                    root: root.clone(),
                },
            );
            if let Some(n) = decls[i].decl.kind.name() {
                let root = root
                    .clone()
                    .or_else(|| Some((noun.clone(), name.to_string())));
                todo.push((n.name.as_str(), decls[i].decl.kind.noun().to_string(), root));
            }
        }
    }
    Ok(why)
}

/// Runs the template and persona checks on the declarations not left out.
fn check_kept(
    sources: &SourceMap,
    files: &[ast::File],
    decls: &[DeclAt],
    why: &HashMap<usize, Why>,
    templates: &BTreeMap<String, String>,
    now: i64,
    mut out: Problems,
) -> Problems {
    let gone: HashSet<(usize, usize)> = why
        .keys()
        .map(|&i| (decls[i].file, decls[i].index))
        .collect();
    let kept: Vec<ast::File> = files
        .iter()
        .enumerate()
        .map(|(fi, f)| ast::File {
            file: f.file,
            decls: f
                .decls
                .iter()
                .enumerate()
                .filter(|(di, _)| !gone.contains(&(fi, *di)))
                .map(|(_, d)| d.clone())
                .collect(),
            broken: Vec::new(),
            unreadable: false,
        })
        .collect();
    // The rest must check on its own: then its names all resolve.
    let mut again = Problems::new();
    check::check_project(sources, &kept, &mut again);
    if again.has_errors() {
        out.push(skipped_everything(
            "the declarations without errors need some that have errors",
        ));
        return out;
    }
    // Flows left out make `trigger.FIELD` unknowable: the template checks
    // are told the flows are incomplete (a marker, as for a syntax error).
    let flows_gone = files.iter().any(|f| f.unreadable || !f.broken.is_empty())
        || why.keys().any(|&i| {
            matches!(
                decls[i].decl.kind,
                DeclKind::Event(_) | DeclKind::Scenario(_) | DeclKind::Cadence(_)
            )
        });
    let mut for_render = kept.clone();
    if flows_gone && let Some(first) = for_render.first_mut() {
        first.broken.push(BrokenDecl {
            keyword: "scenario".into(),
            name: None,
        });
    }
    let project = RenderProject::new(
        sources,
        &for_render,
        &super::template_file_ids(sources),
        now,
    );
    for p in project.check() {
        out.extend_one(p.into_diagnostic());
    }
    let plan = crate::plan::build_plan(sources, &kept, templates);
    crate::verify::personas(sources, &kept, &plan, now, &mut out);
    notes(decls, why, &mut out);
    out
}

/// One `W0910` per template or persona left out because of another
/// declaration's errors.
fn notes(decls: &[DeclAt], why: &HashMap<usize, Why>, out: &mut Problems) {
    let mut left: Vec<(usize, &str, &str, &Root)> = why
        .iter()
        .filter_map(|(&i, w)| match w {
            Why::Needs { noun, name, root } => Some((i, noun.as_str(), name.as_str(), root)),
            Why::Own => None,
        })
        .collect();
    left.sort_unstable_by_key(|&(i, ..)| i);
    let mut counts = [0usize; 2];
    for (i, noun, name, root) in left {
        let (slot, what) = match &decls[i].decl.kind {
            DeclKind::Template(t) => (0, format!("checks of template `{}`", t.name.name)),
            DeclKind::Persona(p) => (1, format!("persona checks for `{}`", p.name.name)),
            _ => continue,
        };
        counts[slot] += 1;
        if counts[slot] > MAX_NOTES {
            continue;
        }
        let Some(ident) = decls[i].decl.kind.name() else {
            continue;
        };
        let (message, culprit) = match root {
            None => (format!("{what} skipped: {noun} `{name}` has errors"), name),
            Some((rnoun, rname)) => (
                format!(
                    "{what} skipped: it uses {noun} `{name}`, which depends on {rnoun} `{rname}` with errors"
                ),
                rname.as_str(),
            ),
        };
        out.push(
            Diagnostic::new(Code::W0910, message)
                .at(ident.span, "not checked")
                .help(format!(
                    "fix the errors of `{culprit}`; this is then checked too"
                )),
        );
    }
    for (slot, kind) in [(0, "templates"), (1, "personas")] {
        if counts[slot] > MAX_NOTES {
            out.push(Diagnostic::new(
                Code::W0910,
                format!(
                    "and {} more {kind} not checked because declarations they use have errors",
                    counts[slot] - MAX_NOTES
                ),
            ));
        }
    }
}

/// The words of a declaration's text that could be names: words outside
/// strings and comments, and strings that are one word (`template =
/// "welcome"` in a persona's event). Words of prose inside a message body
/// ("a", "offer") are not references.
fn words(text: &str) -> Vec<&str> {
    let is_word = |w: &str| {
        w.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && w.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    };
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                let start = i + 1;
                i = start;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                let inner = &text[start..i.min(bytes.len())];
                if is_word(inner) {
                    out.push(inner);
                }
                i += 1;
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i < bytes.len() && !(bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/')) {
                    i += 1;
                }
                i += 2;
            }
            b if b.is_ascii_alphanumeric() || b == b'_' => {
                let start = i;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                if is_word(&text[start..i]) {
                    out.push(&text[start..i]);
                }
            }
            _ => i += 1,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::words;
    use crate::diagnostics::{Code, Problems, SourceFile, SourceMap};

    fn check(text: &str) -> Vec<(Code, String)> {
        let mut sources = SourceMap::new();
        sources.add(SourceFile::new("a.camp", text));
        let checked = crate::driver::check_sources(&sources, Problems::new(), 1);
        checked
            .diagnostics
            .iter()
            .map(|d| (d.code, d.message.clone()))
            .collect()
    }

    const HEAD: &str = "workspace {\n  name = \"Shop\"\n  from = \"Shop <hi@shop.example>\"\n  address = \"1 rue de la Paix, Lyon\"\n}\ncontact {\n  email: email\n  country: text\n}\n";

    #[test]
    fn what_depends_on_an_error_is_left_out_transitively_and_the_rest_is_checked() {
        let found = check(&format!(
            "{HEAD}segment a = contry == \"FR\"\nsegment b = a and country == \"FR\"\n\
             persona marie {{\n  email = \"m@example.com\"\n  country = \"FR\"\n  expect b\n}}\n\
             persona paul {{\n  email = \"p@example.com\"\n  country = \"DE\"\n  expect country == \"FR\"\n}}\n\
             template t : task {{ body = \"{{{{nope}}}}\" }}\n"
        ));
        let codes: Vec<Code> = found.iter().map(|(c, _)| *c).collect();
        assert!(codes.contains(&Code::E0201), "{found:?}");
        assert!(codes.contains(&Code::E0510), "{found:?}");
        // paul's expectation is evaluated; marie's is not.
        assert_eq!(
            codes.iter().filter(|c| **c == Code::E0403).count(),
            1,
            "{found:?}"
        );
        assert!(
            found.iter().any(|(c, m)| *c == Code::W0910
                && m == "persona checks for `marie` skipped: it uses segment `b`, which depends on segment `a` with errors"),
            "{found:?}"
        );
    }

    #[test]
    fn errors_in_the_schema_skip_every_template_and_persona() {
        let found = check(
            "contact {\n  email: email\n  country: txet\n}\n\
             persona marie {\n  email = \"m@example.com\"\n}\n\
             template t : task { body = \"{{nope}}\" }\n",
        );
        assert!(!found.iter().any(|(c, _)| *c == Code::E0510), "{found:?}");
        assert!(
            found
                .iter()
                .any(|(c, m)| *c == Code::W0910 && m.contains("contact schema")),
            "{found:?}"
        );
    }

    #[test]
    fn a_project_without_templates_or_personas_gets_no_note() {
        let found = check("contact {\n  email: email\n}\nsegment a = contry == \"FR\"\n");
        assert!(!found.iter().any(|(c, _)| *c == Code::W0910), "{found:?}");
    }

    #[test]
    fn words_skip_prose_and_comments_but_keep_one_word_strings() {
        let text = "persona marie { // likes offer\n  lists = [leads, vip]\n  event opened { template = \"welcome\" } at 2d ago\n  note = \"a \\\" big offer\"\n  /* gone */ expect big_spender\n}";
        let w = words(text);
        for yes in [
            "persona",
            "marie",
            "leads",
            "vip",
            "opened",
            "welcome",
            "expect",
            "big_spender",
        ] {
            assert!(w.contains(&yes), "{yes} missing from {w:?}");
        }
        for no in ["likes", "offer", "a", "big", "gone", "2d"] {
            assert!(!w.contains(&no), "{no} in {w:?}");
        }
    }
}
