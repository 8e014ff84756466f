//! Every name of a checked project and where it is written: the
//! declarations and their uses, in `.camp` files and in template text
//! (`{{first_name}}`, `{{links.gps}}`). Definition, references, rename,
//! hover and symbols all read this one index.
//!
//! Names resolve as the checker resolves them (`check::expr`): a bare name
//! in a condition is a segment or list when one has that name, else a
//! field; inside `where` an event's fields come before the contact's.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::diagnostics::{FileId, SourceMap, Span};
use crate::syntax::ast::*;

/// What a name stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SymKind {
    Segment,
    List,
    Template,
    Link,
    Persona,
    Scenario,
    Cadence,
    Event,
    EventField,
    Field,
    Topic,
}

impl SymKind {
    pub fn noun(self) -> &'static str {
        match self {
            SymKind::Segment => "segment",
            SymKind::List => "list",
            SymKind::Template => "template",
            SymKind::Link => "link",
            SymKind::Persona => "persona",
            SymKind::Scenario => "scenario",
            SymKind::Cadence => "cadence",
            SymKind::Event => "event",
            SymKind::EventField => "event field",
            SymKind::Field => "contact field",
            SymKind::Topic => "topic",
        }
    }
}

/// A symbol: its kind, name and, for links and event fields, the template
/// or event it belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub kind: SymKind,
    pub owner: Option<String>,
    pub name: String,
}

impl Key {
    fn new(kind: SymKind, name: &str) -> Key {
        Key {
            kind,
            owner: None,
            name: name.to_string(),
        }
    }

    fn owned(kind: SymKind, owner: &str, name: &str) -> Key {
        Key {
            kind,
            owner: Some(owner.to_string()),
            name: name.to_string(),
        }
    }
}

/// One place a symbol's name is written.
#[derive(Clone, Debug)]
pub struct Occurrence {
    pub key: Key,
    /// The name itself (and nothing else).
    pub span: Span,
    pub def: bool,
}

/// A declaration: where, and what to show about it.
#[derive(Clone, Debug)]
pub struct Def {
    pub span: Span,
    pub doc: Option<String>,
}

#[derive(Default)]
pub struct Index {
    pub occurrences: Vec<Occurrence>,
    /// Per file, the indices of its occurrences, sorted by start.
    by_file: HashMap<FileId, Vec<usize>>,
    pub defs: HashMap<Key, Def>,
    /// Template name → the template files (`file("…")`) it uses.
    pub template_files: BTreeMap<String, Vec<String>>,
}

struct Names<'a> {
    segments: HashSet<&'a str>,
    lists: HashSet<&'a str>,
    fields: HashSet<&'a str>,
    events: HashMap<&'a str, HashSet<&'a str>>,
    templates: HashMap<&'a str, &'a Template>,
}

impl Index {
    pub fn build(sources: &SourceMap, files: &[File]) -> Index {
        let mut names = Names {
            segments: HashSet::new(),
            lists: HashSet::new(),
            fields: HashSet::new(),
            events: HashMap::new(),
            templates: HashMap::new(),
        };
        for f in files {
            for d in &f.decls {
                match &d.kind {
                    DeclKind::Segment(s) => {
                        names.segments.insert(&s.name.name);
                    }
                    DeclKind::List(l) => {
                        names.lists.insert(&l.name.name);
                    }
                    DeclKind::Contact(c) => {
                        names
                            .fields
                            .extend(c.fields.iter().map(|f| f.name.name.as_str()));
                    }
                    DeclKind::Event(e) => {
                        names
                            .events
                            .entry(&e.name.name)
                            .or_default()
                            .extend(e.fields.iter().map(|f| f.name.name.as_str()));
                    }
                    DeclKind::Template(t) => {
                        names.templates.insert(&t.name.name, t);
                    }
                    _ => {}
                }
            }
        }
        let mut ix = Index::default();
        for f in files {
            let camp = &sources.get(f.file).path;
            for d in &f.decls {
                ix.decl(d, &names, sources, camp);
            }
        }
        // Template files: `{{field}}` and `{{links.NAME}}` in `.hbs` text.
        let mut owners: HashMap<&str, Vec<&str>> = HashMap::new();
        for (t, paths) in &ix.template_files {
            for p in paths {
                owners.entry(p.as_str()).or_default().push(t.as_str());
            }
        }
        let mut hbs_occ = Vec::new();
        for (id, f) in sources.files() {
            if f.camp || !f.readable || !f.path.ends_with(".hbs") {
                continue;
            }
            let owner = match owners.get(f.path.as_str()).map(Vec::as_slice) {
                Some([one]) => Some(*one),
                _ => None,
            };
            scan_template_text(&f.text, 0, id, owner, &names, &mut hbs_occ);
        }
        ix.occurrences.extend(hbs_occ);
        for (i, o) in ix.occurrences.iter().enumerate() {
            ix.by_file.entry(o.span.file).or_default().push(i);
        }
        for v in ix.by_file.values_mut() {
            v.sort_by_key(|&i| (ix.occurrences[i].span.start, ix.occurrences[i].span.end));
        }
        ix
    }

    /// The occurrence under byte `offset` of `file` (at its start, inside,
    /// or just after its end).
    pub fn at(&self, file: FileId, offset: usize) -> Option<&Occurrence> {
        let list = self.by_file.get(&file)?;
        let offset = offset as u32;
        list.iter()
            .map(|&i| &self.occurrences[i])
            .filter(|o| o.span.start <= offset && offset <= o.span.end)
            .min_by_key(|o| o.span.len())
    }

    pub fn of<'s>(&'s self, key: &'s Key) -> impl Iterator<Item = &'s Occurrence> + 's {
        self.occurrences.iter().filter(move |o| &o.key == key)
    }

    pub fn in_file(&self, file: FileId) -> impl Iterator<Item = &Occurrence> {
        self.by_file
            .get(&file)
            .into_iter()
            .flatten()
            .map(|&i| &self.occurrences[i])
    }

    fn add(&mut self, key: Key, span: Span, def: bool) {
        self.occurrences.push(Occurrence { key, span, def });
    }

    fn define(&mut self, key: Key, span: Span, doc: Option<&String>) {
        self.defs.entry(key.clone()).or_insert(Def {
            span,
            doc: doc.cloned(),
        });
        self.add(key, span, true);
    }

    fn decl(&mut self, d: &Decl, n: &Names, sources: &SourceMap, camp: &str) {
        let doc = d.doc.as_ref();
        match &d.kind {
            DeclKind::Contact(c) => {
                for f in &c.fields {
                    self.define(Key::new(SymKind::Field, &f.name.name), f.name.span, None);
                }
            }
            DeclKind::Event(e) => {
                self.define(Key::new(SymKind::Event, &e.name.name), e.name.span, doc);
                for f in &e.fields {
                    let key = Key::owned(SymKind::EventField, &e.name.name, &f.name.name);
                    self.define(key, f.name.span, None);
                }
            }
            DeclKind::List(l) => {
                self.define(Key::new(SymKind::List, &l.name.name), l.name.span, doc);
                self.steps(&l.on_join, n);
            }
            DeclKind::Segment(s) => {
                self.define(Key::new(SymKind::Segment, &s.name.name), s.name.span, doc);
                self.expr(&s.expr, None, n);
            }
            DeclKind::Persona(p) => {
                self.define(Key::new(SymKind::Persona, &p.name.name), p.name.span, doc);
                for v in &p.values {
                    self.add(Key::new(SymKind::Field, &v.name.name), v.name.span, false);
                    if v.name.name == "lists"
                        && let Value::List(items) = &v.value
                    {
                        for t in &items.node {
                            if let TermKind::Name(x) = &t.kind
                                && n.lists.contains(x.as_str())
                            {
                                self.add(Key::new(SymKind::List, x), t.span, false);
                            }
                        }
                    }
                }
                for e in &p.events {
                    self.add(Key::new(SymKind::Event, &e.name.name), e.name.span, false);
                    // A message event names its template (and link) in strings.
                    let quoted = |v: &FieldValue| match &v.value {
                        Value::Term(Term {
                            kind: TermKind::Str(s),
                            span,
                        }) if span.len() == s.len() + 2 => Some((
                            s.clone(),
                            Span::new(span.file, span.start as usize + 1, span.end as usize - 1),
                        )),
                        _ => None,
                    };
                    let template = e
                        .values
                        .iter()
                        .find(|v| v.name.name == "template")
                        .and_then(quoted);
                    for v in &e.values {
                        let key = Key::owned(SymKind::EventField, &e.name.name, &v.name.name);
                        self.add(key, v.name.span, false);
                        if !n.events.contains_key(e.name.name.as_str())
                            && let Some((s, span)) = quoted(v)
                        {
                            match (v.name.name.as_str(), &template) {
                                ("template", _) if n.templates.contains_key(s.as_str()) => {
                                    self.add(Key::new(SymKind::Template, &s), span, false)
                                }
                                ("link", Some((t, _))) if n.templates.contains_key(t.as_str()) => {
                                    self.add(Key::owned(SymKind::Link, t, &s), span, false)
                                }
                                _ => {}
                            }
                        }
                    }
                }
                for x in &p.expects {
                    self.expr(x, None, n);
                }
            }
            DeclKind::Template(t) => {
                let name = &t.name.name;
                self.define(Key::new(SymKind::Template, name), t.name.span, doc);
                for l in &t.links {
                    let key = Key::owned(SymKind::Link, name, &l.name.name);
                    self.define(key, l.name.span, None);
                }
                for a in t.attrs.iter().chain(t.variants.iter().map(|v| &v.attr)) {
                    match &a.value.node {
                        AttrValue::Word(w) if a.name.name == "topic" => {
                            self.add(Key::new(SymKind::Topic, w), a.value.span, false);
                        }
                        AttrValue::Str(_) => {
                            let span = a.value.span;
                            let text = sources.text(span);
                            let mut found = Vec::new();
                            scan_template_text(
                                text,
                                span.start as usize,
                                span.file,
                                Some(name),
                                n,
                                &mut found,
                            );
                            self.occurrences.extend(found);
                        }
                        AttrValue::File(p) => {
                            if let Some(path) = crate::plan::resolve_template_path(camp, &p.node) {
                                self.template_files
                                    .entry(name.clone())
                                    .or_default()
                                    .push(path);
                            }
                        }
                        _ => {}
                    }
                }
            }
            DeclKind::Scenario(s) => {
                self.define(Key::new(SymKind::Scenario, &s.name.name), s.name.span, doc);
                for e in s.audience.iter().chain(&s.exit_when) {
                    self.expr(e, None, n);
                }
                for t in &s.triggers {
                    match &t.node {
                        Trigger::Joined(l) => {
                            self.add(Key::new(SymKind::List, &l.name), l.span, false)
                        }
                        Trigger::Event { event, filter } => {
                            self.add(Key::new(SymKind::Event, &event.name), event.span, false);
                            if let Some(f) = filter {
                                self.expr(f, Some(&event.name), n);
                            }
                        }
                        Trigger::Entered(s) => {
                            self.add(Key::new(SymKind::Segment, &s.name), s.span, false)
                        }
                        Trigger::At { time, .. } => self.term(time, None, n),
                        Trigger::Yearly { field, .. } => {
                            self.add(Key::new(SymKind::Field, &field.name), field.span, false)
                        }
                        _ => {}
                    }
                }
                for g in &s.goals {
                    let kind = if g.joined {
                        SymKind::List
                    } else {
                        SymKind::Event
                    };
                    self.add(Key::new(kind, &g.event.name), g.event.span, false);
                    if let Some(f) = &g.filter {
                        self.expr(f, Some(&g.event.name), n);
                    }
                    if let Some(v) = &g.value {
                        let key = Key::owned(SymKind::EventField, &g.event.name, &v.name);
                        self.add(key, v.span, false);
                    }
                }
                self.steps(&s.steps, n);
            }
            DeclKind::Cadence(c) => {
                self.define(Key::new(SymKind::Cadence, &c.name.name), c.name.span, doc);
                for e in &c.stop {
                    self.expr(e, None, n);
                }
                for t in &c.touches {
                    self.add(
                        Key::new(SymKind::Template, &t.template.name),
                        t.template.span,
                        false,
                    );
                    if let Some(w) = &t.when {
                        self.expr(w, None, n);
                    }
                }
            }
            DeclKind::Topic(t) => {
                self.define(Key::new(SymKind::Topic, &t.name.name), t.name.span, doc);
            }
            DeclKind::Consent(c) => self.expr(&c.expr, None, n),
            DeclKind::Workspace(_) | DeclKind::Pressure(_) => {}
        }
    }

    fn steps(&mut self, steps: &[Step], n: &Names) {
        for s in steps {
            match &s.kind {
                StepKind::Send(t) => self.add(Key::new(SymKind::Template, &t.name), t.span, false),
                StepKind::WaitUntil { cond, .. } => self.expr(cond, None, n),
                StepKind::Branch(arms) => {
                    for a in arms {
                        if let Some(c) = &a.cond {
                            self.expr(c, None, n);
                        }
                        self.steps(&a.steps, n);
                    }
                }
                StepKind::Split(arms) => {
                    for a in arms {
                        self.steps(&a.steps, n);
                    }
                }
                StepKind::Join(l) | StepKind::Leave(l) => {
                    self.add(Key::new(SymKind::List, &l.name), l.span, false)
                }
                StepKind::Start(c) => self.add(Key::new(SymKind::Cadence, &c.name), c.span, false),
                StepKind::WaitUntilTime(t) => self.term(t, None, n),
                _ => {}
            }
        }
    }

    fn expr(&mut self, e: &Expr, event: Option<&str>, n: &Names) {
        match &e.kind {
            ExprKind::Or(xs) | ExprKind::And(xs) => {
                for x in xs {
                    self.expr(x, event, n);
                }
            }
            ExprKind::Not(x) => self.expr(x, event, n),
            ExprKind::Compare { lhs, rhs, .. } => {
                self.term(lhs, event, n);
                self.term(rhs, event, n);
            }
            ExprKind::In { term, list, .. } => {
                self.term(term, event, n);
                for t in &list.node {
                    self.term(t, event, n);
                }
            }
            ExprKind::Contains { haystack, needle } => {
                self.term(haystack, event, n);
                self.term(needle, event, n);
            }
            ExprKind::IsSet { term, .. } => self.term(term, event, n),
            ExprKind::TextTest { term, arg, .. } => {
                self.term(term, event, n);
                self.term(arg, event, n);
            }
            ExprKind::Name(id) => {
                if let Some(key) = resolve_name(&id.name, event, n, true) {
                    self.add(key, id.span, false);
                }
            }
            ExprKind::Bool(_) => {}
            ExprKind::Engagement { target, since, .. } => {
                if let EngagementTarget::Template { template, link } = target {
                    self.add(
                        Key::new(SymKind::Template, &template.name),
                        template.span,
                        false,
                    );
                    if let Some(l) = link {
                        let key = Key::owned(SymKind::Link, &template.name, &l.name);
                        self.add(key, l.span, false);
                    }
                }
                if let Some(s) = since {
                    self.term(s, event, n);
                }
            }
            ExprKind::Aggregate { agg, rhs, .. } => {
                self.add(
                    Key::new(SymKind::Event, &agg.event.name),
                    agg.event.span,
                    false,
                );
                if let Some(f) = &agg.field {
                    let key = Key::owned(SymKind::EventField, &agg.event.name, &f.name);
                    self.add(key, f.span, false);
                }
                if let Some(f) = &agg.filter {
                    self.expr(f, Some(&agg.event.name), n);
                }
                if let Some(s) = &agg.since {
                    self.term(s, event, n);
                }
                self.term(rhs, event, n);
            }
        }
    }

    fn term(&mut self, t: &Term, event: Option<&str>, n: &Names) {
        match &t.kind {
            TermKind::Name(name) => {
                if let Some(key) = resolve_name(name, event, n, false) {
                    self.add(key, t.span, false);
                }
            }
            TermKind::Shifted { base, .. } => self.term(base, event, n),
            _ => {}
        }
    }
}

/// What a bare name means where it is written (`event`: inside the `where`
/// of that event). `condition`: the name stands alone as a condition,
/// where segments and lists come first.
fn resolve_name(name: &str, event: Option<&str>, n: &Names, condition: bool) -> Option<Key> {
    if let Some(ev) = event
        && n.events.get(ev).is_some_and(|f| f.contains(name))
    {
        return Some(Key::owned(SymKind::EventField, ev, name));
    }
    if condition || !n.fields.contains(name) {
        if n.segments.contains(name) {
            return Some(Key::new(SymKind::Segment, name));
        }
        if n.lists.contains(name) {
            return Some(Key::new(SymKind::List, name));
        }
    }
    if n.fields.contains(name) {
        return Some(Key::new(SymKind::Field, name));
    }
    None
}

/// Finds contact fields and `links.NAME` inside the `{{…}}` tags of
/// template text (`base`: the text's offset in its file). Names after a
/// `.`, `@` or `/`, string literals and hash keys are skipped.
fn scan_template_text(
    text: &str,
    base: usize,
    file: FileId,
    owner: Option<&str>,
    n: &Names,
    out: &mut Vec<Occurrence>,
) {
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(open) = find(bytes, i, b"{{") {
        let Some(close) = find(bytes, open + 2, b"}}") else {
            break;
        };
        let tag = &text[open + 2..close];
        // Comments carry no names.
        if tag.starts_with('!') {
            let end = if tag.starts_with("!--") {
                find(bytes, open, b"--}}").map_or(close + 2, |e| e + 4)
            } else {
                close + 2
            };
            i = end;
            continue;
        }
        for (s, e) in tag_words(tag) {
            let word = &tag[s..e];
            let at = base + open + 2 + s;
            let (head, rest) = match word.split_once('.') {
                Some((h, r)) => (h, Some(r)),
                None => (word, None),
            };
            if head == "links" {
                if let (Some(link), Some(t)) = (rest, owner) {
                    let l = link.split('.').next().unwrap_or(link);
                    let start = at + head.len() + 1;
                    out.push(Occurrence {
                        key: Key::owned(SymKind::Link, t, l),
                        span: Span::new(file, start, start + l.len()),
                        def: false,
                    });
                }
                continue;
            }
            if n.fields.contains(head) {
                out.push(Occurrence {
                    key: Key::new(SymKind::Field, head),
                    span: Span::new(file, at, at + head.len()),
                    def: false,
                });
            }
        }
        i = close + 2;
    }
}

fn find(hay: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    if from > hay.len() {
        return None;
    }
    memchr::memmem::find(&hay[from..], needle).map(|p| p + from)
}

/// The path words of one tag's inside (byte ranges): identifiers and
/// dotted paths that start a word, not inside quotes, not hash keys, not
/// after `@`, `.`, `/` or `>` (partial names).
fn tag_words(tag: &str) -> Vec<(usize, usize)> {
    let b = tag.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    // A partial's name is not a variable.
    let mut skip_next = tag.trim_start_matches(['~', ' ']).starts_with('>');
    while i < b.len() {
        let c = b[i];
        if c == b'"' || c == b'\'' {
            let q = c;
            i += 1;
            while i < b.len() && b[i] != q {
                i += 1;
            }
            i += 1;
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || matches!(b[i], b'_' | b'.')) {
                i += 1;
            }
            let prev = if start == 0 { b' ' } else { b[start - 1] };
            let is_key = b.get(i) == Some(&b'=');
            let after_sigil = matches!(prev, b'@' | b'.' | b'/' | b'>' | b'-');
            let is_helper_or_kw = matches!(
                &tag[start..i],
                "if" | "unless" | "each" | "with" | "else" | "this" | "lookup" | "as"
            );
            if skip_next {
                skip_next = false;
            } else if !is_key && !after_sigil && !is_helper_or_kw {
                out.push((start, i.min(b.len())));
            }
            continue;
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostics::{Problems, SourceFile};

    const PROJECT: &str = r#"contact { email: email, vip: bool, amount: number }
event purchase { amount: number }
list customers
segment big = sum(purchase.amount where amount > 10) > amount and vip
segment both = big and customers
template offer : email { subject = "Hi {{vip}} {{links.gps}}", html = "<a href=\"{{links.gps}}\">x</a>", link gps = "https://x.example" }
persona p {
  email = "p@example.com"
  lists = [customers]
  event clicked { template = "offer", link = "gps" } at 2d ago
  expect both
}
scenario s { trigger joined customers
  send offer
  branch { when clicked(offer.gps) { join customers } }
}
"#;

    fn index() -> (SourceMap, Index) {
        let mut sources = SourceMap::new();
        let id = sources.add(SourceFile::new("a.camp", PROJECT));
        let mut problems = Problems::new();
        let file = crate::syntax::parse_file(id, PROJECT, &mut problems);
        assert!(
            !problems.has_errors(),
            "{:?}",
            problems.iter().collect::<Vec<_>>()
        );
        let ix = Index::build(&sources, &[file]);
        (sources, ix)
    }

    fn texts(sources: &SourceMap, ix: &Index, key: &Key) -> Vec<String> {
        ix.of(key)
            .map(|o| {
                let s = o.span;
                format!(
                    "{}@{}",
                    sources.text(s),
                    PROJECT[..s.start as usize].lines().count()
                )
            })
            .collect()
    }

    #[test]
    fn names_resolve_as_the_checker_resolves_them() {
        let (sources, ix) = index();
        // `amount` inside `where` is the event's; outside, the contact's.
        let ev = Key::owned(SymKind::EventField, "purchase", "amount");
        assert_eq!(
            texts(&sources, &ix, &ev),
            ["amount@2", "amount@4", "amount@4"]
        );
        let field = Key::new(SymKind::Field, "amount");
        assert_eq!(texts(&sources, &ix, &field), ["amount@1", "amount@4"]);
        // A template's name in `send`, engagement, and a persona's event.
        let t = Key::new(SymKind::Template, "offer");
        assert_eq!(texts(&sources, &ix, &t).len(), 4);
        // A link: its declaration, `clicked(offer.gps)`, the persona's
        // event and `{{links.gps}}` in two strings of the template.
        let l = Key::owned(SymKind::Link, "offer", "gps");
        assert_eq!(texts(&sources, &ix, &l).len(), 5);
        // A contact field inside a template string.
        let vip = Key::new(SymKind::Field, "vip");
        assert_eq!(texts(&sources, &ix, &vip), ["vip@1", "vip@4", "vip@6"]);
        // Lists: declared, in a segment, a persona's `lists`, a trigger, a step.
        let c = Key::new(SymKind::List, "customers");
        assert_eq!(texts(&sources, &ix, &c).len(), 5);
        assert!(ix.defs.contains_key(&Key::new(SymKind::Segment, "big")));
    }

    #[test]
    fn the_occurrence_under_the_cursor() {
        let (_, ix) = index();
        let at = PROJECT.find("send offer").unwrap() + 7;
        let o = ix.at(FileId(0), at).unwrap();
        assert_eq!(o.key, Key::new(SymKind::Template, "offer"));
        // Just after the name still finds it; a keyword finds nothing.
        assert!(ix.at(FileId(0), at + 3).is_some());
        assert!(
            ix.at(FileId(0), PROJECT.find("send offer").unwrap() + 1)
                .is_none()
        );
    }

    #[test]
    fn tag_words_skip_strings_keys_and_partials() {
        let tag = "default first_name \"Bonjour\" x=y";
        let words: Vec<&str> = tag_words(tag)
            .into_iter()
            .map(|(s, e)| &tag[s..e])
            .collect();
        assert_eq!(words, ["default", "first_name", "y"]);
        let tag = "> footer";
        assert!(tag_words(tag).is_empty());
        let tag = "#each @root.items";
        let words: Vec<&str> = tag_words(tag)
            .into_iter()
            .map(|(s, e)| &tag[s..e])
            .collect();
        assert!(words.is_empty(), "{words:?}");
    }
}
