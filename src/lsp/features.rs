//! The requests: hover, definition, references, rename, completion,
//! symbols, formatting, code actions, semantic tokens and folding ranges.
//! Each reads the project's current analysis and its [`Index`].

use std::collections::BTreeMap;

use lsp_server::{ErrorCode, Request};
use lsp_types::{Position, Range, TextEdit, Url};
use serde_json::{Value, json};

use super::convert::{self, Encoding};
use super::index::{Index, Key, Occurrence, SymKind};
use super::project::Project;
use super::{Server, doc_path};
use crate::diagnostics::{FileId, SourceFile, Span};
use crate::syntax::ast::{self, AttrValue, DeclKind};

type Reply = Result<Value, (ErrorCode, String)>;

/// The token types of semantic highlighting, in legend order.
const TOKEN_TYPES: &[&str] = &[
    "variable",   // segment
    "enum",       // list
    "function",   // template
    "property",   // link, fields
    "class",      // persona
    "namespace",  // scenario, cadence
    "event",      // event
    "enumMember", // topic
];

fn token_type(kind: SymKind) -> u32 {
    match kind {
        SymKind::Segment => 0,
        SymKind::List => 1,
        SymKind::Template => 2,
        SymKind::Link | SymKind::Field | SymKind::EventField => 3,
        SymKind::Persona => 4,
        SymKind::Scenario | SymKind::Cadence => 5,
        SymKind::Event => 6,
        SymKind::Topic => 7,
    }
}

pub fn capabilities(encoding: Encoding) -> Value {
    json!({
        "positionEncoding": match encoding { Encoding::Utf8 => "utf-8", Encoding::Utf16 => "utf-16" },
        "textDocumentSync": { "openClose": true, "change": 1, "save": { "includeText": false } },
        "hoverProvider": true,
        "definitionProvider": true,
        "referencesProvider": true,
        "renameProvider": { "prepareProvider": true },
        "completionProvider": { "triggerCharacters": [".", "(", "{", " "] },
        "documentSymbolProvider": true,
        "workspaceSymbolProvider": true,
        "documentFormattingProvider": true,
        "codeActionProvider": { "codeActionKinds": ["quickfix"] },
        "semanticTokensProvider": {
            "legend": { "tokenTypes": TOKEN_TYPES, "tokenModifiers": ["declaration"] },
            "full": true,
        },
        "foldingRangeProvider": true,
    })
}

fn bad(message: impl Into<String>) -> (ErrorCode, String) {
    (ErrorCode::InvalidParams, message.into())
}

fn params<T: serde::de::DeserializeOwned>(req: &Request) -> Result<T, (ErrorCode, String)> {
    serde_json::from_value(req.params.clone()).map_err(|e| bad(format!("bad parameters: {e}")))
}

/// `textDocument.uri` and `position` of a positional request.
fn at(req: &Request) -> Result<(Url, Position), (ErrorCode, String)> {
    let p: lsp_types::TextDocumentPositionParams = params(req)?;
    Ok((p.text_document.uri, p.position))
}

pub fn handle(server: &mut Server, req: Request) -> Reply {
    match req.method.as_str() {
        "textDocument/hover" => {
            let (uri, pos) = at(&req)?;
            with_occurrence(server, &uri, pos, hover)
        }
        "textDocument/definition" => {
            let (uri, pos) = at(&req)?;
            with_occurrence(server, &uri, pos, |c, o| {
                let def = c.ix.defs.get(&o.key)?;
                Some(json!(c.location(def.span)?))
            })
        }
        "textDocument/references" => {
            let p: lsp_types::ReferenceParams = params(&req)?;
            let decl = p.context.include_declaration;
            let tdp = p.text_document_position;
            with_occurrence(server, &tdp.text_document.uri, tdp.position, |c, o| {
                let list: Vec<Value> =
                    c.ix.of(&o.key)
                        .filter(|r| decl || !r.def)
                        .filter_map(|r| c.location(r.span).map(|l| json!(l)))
                        .collect();
                Some(json!(list))
            })
        }
        "textDocument/prepareRename" => {
            let (uri, pos) = at(&req)?;
            let reply = with_occurrence(server, &uri, pos, |c, o| {
                c.ix.defs.get(&o.key)?;
                Some(json!({ "range": c.range(o.span), "placeholder": o.key.name }))
            })?;
            if reply.is_null() {
                return Err(bad(
                    "only a name declared in this project can be renamed here",
                ));
            }
            Ok(reply)
        }
        "textDocument/rename" => {
            let p: lsp_types::RenameParams = params(&req)?;
            let new = p.new_name.trim().to_string();
            if !is_name(&new) {
                return Err(bad(format!(
                    "`{new}` is not a name: names are lower-case letters, digits and `_`, not starting with a digit, and not a keyword"
                )));
            }
            let tdp = p.text_document_position;
            let mut refused = None;
            let reply = with_occurrence(server, &tdp.text_document.uri, tdp.position, |c, o| {
                c.ix.defs.get(&o.key)?;
                if let Some(clash) = clash(c.ix, &o.key, &new) {
                    refused = Some(clash);
                    return None;
                }
                let mut changes: BTreeMap<Url, Vec<TextEdit>> = BTreeMap::new();
                for r in c.ix.of(&o.key) {
                    let Some(loc) = c.location(r.span) else {
                        continue;
                    };
                    changes
                        .entry(loc.uri)
                        .or_default()
                        .push(TextEdit::new(loc.range, new.clone()));
                }
                Some(json!({ "changes": changes }))
            })?;
            if let Some(why) = refused {
                return Err(bad(why));
            }
            if reply.is_null() {
                return Err(bad("only a name declared in this project can be renamed"));
            }
            Ok(reply)
        }
        "textDocument/completion" => {
            let p: lsp_types::CompletionParams = params(&req)?;
            let tdp = p.text_document_position;
            Ok(super::complete::complete_at(
                server,
                &tdp.text_document.uri,
                tdp.position,
            ))
        }
        "textDocument/documentSymbol" => {
            let p: lsp_types::DocumentSymbolParams = params(&req)?;
            Ok(with_file(server, &p.text_document.uri, document_symbols).unwrap_or(json!([])))
        }
        "workspace/symbol" => {
            let p: lsp_types::WorkspaceSymbolParams = params(&req)?;
            Ok(workspace_symbols(server, &p.query))
        }
        "textDocument/formatting" => {
            let p: lsp_types::DocumentFormattingParams = params(&req)?;
            Ok(formatting(server, &p.text_document.uri))
        }
        "textDocument/codeAction" => {
            let p: lsp_types::CodeActionParams = params(&req)?;
            Ok(code_actions(server, &p))
        }
        "textDocument/semanticTokens/full" => {
            let p: lsp_types::SemanticTokensParams = params(&req)?;
            Ok(with_file(server, &p.text_document.uri, semantic_tokens)
                .unwrap_or(json!({ "data": [] })))
        }
        "textDocument/foldingRange" => {
            let p: lsp_types::FoldingRangeParams = params(&req)?;
            Ok(with_file(server, &p.text_document.uri, folding).unwrap_or(json!([])))
        }
        other => Err((
            ErrorCode::MethodNotFound,
            format!("relance lsp does not answer `{other}`"),
        )),
    }
}

/// What a request handler reads: the analysed project, its index, and the
/// file asked about.
pub struct Ctx<'a> {
    pub project: &'a Project,
    pub ix: &'a Index,
    pub file: FileId,
    pub enc: Encoding,
}

impl Ctx<'_> {
    pub fn source(&self, id: FileId) -> &SourceFile {
        self.project.snap.sources.get(id)
    }

    pub fn range(&self, span: Span) -> Range {
        convert::span_range(&self.project.snap.sources, span, self.enc)
    }

    pub fn location(&self, span: Span) -> Option<lsp_types::Location> {
        let f = self.source(span.file);
        let uri = convert::url(&self.project.root.join(&f.path))?;
        Some(lsp_types::Location::new(uri, self.range(span)))
    }

    pub fn decls(&self) -> impl Iterator<Item = &ast::Decl> {
        self.project.snap.files.iter().flat_map(|f| &f.decls)
    }

    pub fn decl(&self, kind: SymKind, name: &str) -> Option<&ast::Decl> {
        self.decls().find(|d| {
            d.kind.name().is_some_and(|n| n.name == name)
                && matches!(
                    (&d.kind, kind),
                    (DeclKind::Segment(_), SymKind::Segment)
                        | (DeclKind::List(_), SymKind::List)
                        | (DeclKind::Template(_), SymKind::Template)
                        | (DeclKind::Persona(_), SymKind::Persona)
                        | (DeclKind::Scenario(_), SymKind::Scenario)
                        | (DeclKind::Cadence(_), SymKind::Cadence)
                        | (DeclKind::Event(_), SymKind::Event)
                        | (DeclKind::Topic(_), SymKind::Topic)
                )
        })
    }

    pub fn template(&self, name: &str) -> Option<&ast::Template> {
        match &self.decl(SymKind::Template, name)?.kind {
            DeclKind::Template(t) => Some(t),
            _ => None,
        }
    }

    pub fn text(&self, span: Span) -> &str {
        self.project.snap.sources.text(span)
    }
}

fn with_file(server: &mut Server, uri: &Url, f: impl FnOnce(&Ctx) -> Value) -> Option<Value> {
    let enc = server.encoding;
    let (project, ix, rel) = server.analysed(uri)?;
    let file = project.snap.file_id(&rel)?;
    Some(f(&Ctx {
        project,
        ix,
        file,
        enc,
    }))
}

fn with_occurrence(
    server: &mut Server,
    uri: &Url,
    pos: Position,
    f: impl FnOnce(&Ctx, &Occurrence) -> Option<Value>,
) -> Reply {
    let enc = server.encoding;
    let Some((project, ix, rel)) = server.analysed(uri) else {
        return Ok(Value::Null);
    };
    let Some(file) = project.snap.file_id(&rel) else {
        return Ok(Value::Null);
    };
    let ctx = Ctx {
        project,
        ix,
        file,
        enc,
    };
    let offset = convert::offset(ctx.source(file), pos, enc);
    let Some(o) = ix.at(file, offset) else {
        return Ok(Value::Null);
    };
    Ok(f(&ctx, o).unwrap_or(Value::Null))
}

// ------------------------------------------------------------ hover

fn markdown(text: String) -> Value {
    json!({ "contents": { "kind": "markdown", "value": text } })
}

fn code(text: &str) -> String {
    format!("```relance\n{text}\n```")
}

fn with_doc(mut s: String, doc: Option<&String>) -> String {
    if let Some(d) = doc.filter(|d| !d.trim().is_empty()) {
        s.push_str("\n\n");
        s.push_str(d.trim());
    }
    s
}

fn hover(c: &Ctx, o: &Occurrence) -> Option<Value> {
    let mut v = markdown(hover_text(c, &o.key)?);
    v["range"] = json!(c.range(o.span));
    Some(v)
}

fn field_line(c: &Ctx, f: &ast::FieldDecl) -> String {
    let ty = c.text(f.ty.span);
    let q = if f.optional && !ty.ends_with('?') {
        "?"
    } else {
        ""
    };
    format!("{}: {ty}{q}", f.name.name)
}

pub fn hover_text(c: &Ctx, key: &Key) -> Option<String> {
    let doc = c.ix.defs.get(key).and_then(|d| d.doc.as_ref());
    Some(match key.kind {
        SymKind::Field => {
            let f = c.decls().find_map(|d| match &d.kind {
                DeclKind::Contact(s) => s.fields.iter().find(|f| f.name.name == key.name),
                _ => None,
            })?;
            format!("{}\n\ncontact field", code(&field_line(c, f)))
        }
        SymKind::Event => {
            let fields: Vec<String> = match c.decl(SymKind::Event, &key.name).map(|d| &d.kind) {
                Some(DeclKind::Event(e)) => e.fields.iter().map(|f| field_line(c, f)).collect(),
                _ => crate::check::types::builtin_event(&key.name)?
                    .list
                    .iter()
                    .map(|f| {
                        let q = if f.optional { "?" } else { "" };
                        format!("{}: {}{q}", f.name, f.ty.describe())
                    })
                    .collect(),
            };
            let body = if fields.is_empty() {
                format!("event {}", key.name)
            } else {
                format!("event {} {{\n  {}\n}}", key.name, fields.join("\n  "))
            };
            let builtin = !c.ix.defs.contains_key(key);
            let s = code(&body);
            with_doc(
                if builtin {
                    format!("{s}\n\nbuilt-in message event")
                } else {
                    s
                },
                doc,
            )
        }
        SymKind::EventField => {
            let owner = key.owner.as_deref()?;
            let Some(DeclKind::Event(e)) = c.decl(SymKind::Event, owner).map(|d| &d.kind) else {
                return None;
            };
            let f = e.fields.iter().find(|f| f.name.name == key.name)?;
            format!("{}\n\nfield of event `{owner}`", code(&field_line(c, f)))
        }
        SymKind::Segment => {
            let Some(DeclKind::Segment(s)) = c.decl(SymKind::Segment, &key.name).map(|d| &d.kind)
            else {
                return None;
            };
            with_doc(
                code(&format!("segment {} = {}", key.name, c.text(s.expr.span))),
                doc,
            )
        }
        SymKind::Template => {
            let t = c.template(&key.name)?;
            let mut lines = vec![code(&format!("template {} : {}", key.name, t.channel.name))];
            let kind = if crate::check::consent::is_marketing(t) {
                "marketing"
            } else {
                "transactional"
            };
            let mut facts = vec![format!("**channel** {} · **kind** {kind}", t.channel.name)];
            for a in &t.attrs {
                if matches!(a.name.name.as_str(), "subject" | "title")
                    && let AttrValue::Str(s) = &a.value.node
                {
                    facts.push(format!("**{}** {}", a.name.name, s));
                }
            }
            lines.push(facts.join("  \n"));
            with_doc(lines.join("\n\n"), doc)
        }
        SymKind::Link => {
            let owner = key.owner.as_deref()?;
            let t = c.template(owner)?;
            let l = t.links.iter().find(|l| l.name.name == key.name)?;
            format!(
                "{}\n\nlink of template `{owner}`",
                code(&format!("link {} = \"{}\"", key.name, l.url.node))
            )
        }
        SymKind::Persona => {
            let Some(DeclKind::Persona(p)) = c.decl(SymKind::Persona, &key.name).map(|d| &d.kind)
            else {
                return None;
            };
            let head = if p.negative {
                "negative persona"
            } else {
                "persona"
            };
            let mut s = code(&format!("{head} {}", key.name));
            s.push_str(&format!(
                "\n\n{} values, {} events, {} `expect` lines",
                p.values.len(),
                p.events.len(),
                p.expects.len()
            ));
            with_doc(s, doc)
        }
        SymKind::Cadence => {
            let Some(DeclKind::Cadence(cad)) = c.decl(SymKind::Cadence, &key.name).map(|d| &d.kind)
            else {
                return None;
            };
            with_doc(
                format!(
                    "{}\n\n{}",
                    code(&format!("cadence {}", key.name)),
                    timeline(c, cad)
                ),
                doc,
            )
        }
        SymKind::Scenario => {
            let Some(DeclKind::Scenario(s)) = c.decl(SymKind::Scenario, &key.name).map(|d| &d.kind)
            else {
                return None;
            };
            let mut lines = vec![format!("scenario {}", key.name)];
            for t in &s.triggers {
                lines.push(format!("  trigger {}", c.text(t.span)));
            }
            with_doc(code(&lines.join("\n")), doc)
        }
        SymKind::List => with_doc(code(&format!("list {}", key.name)), doc),
        SymKind::Topic => {
            let Some(DeclKind::Topic(t)) = c.decl(SymKind::Topic, &key.name).map(|d| &d.kind)
            else {
                return None;
            };
            with_doc(
                code(&format!("topic {} \"{}\"", key.name, t.label.node)),
                doc,
            )
        }
    })
}

/// The day of each touch of a cadence: the first at its own `after` (or
/// when the cadence starts), each next one `spacing` (or its own `after`)
/// after the previous.
fn timeline(c: &Ctx, cad: &ast::Cadence) -> String {
    const DAY: i64 = 86_400;
    let spacing = cad.spacing.first().map(|s| s.node.seconds());
    let business_spacing = cad.business_spacing.first().map(|s| s.node);
    let (mut secs, mut business) = (0i64, 0u32);
    let mut rows = Vec::new();
    for (i, t) in cad.touches.iter().enumerate() {
        match (&t.after, &t.after_business) {
            (Some(a), _) => secs += a.node.seconds(),
            (None, Some(b)) => business += b.node,
            (None, None) if i > 0 => match (spacing, business_spacing) {
                (Some(s), _) => secs += s,
                (None, Some(b)) => business += b,
                (None, None) => secs += DAY,
            },
            _ => {}
        }
        let mut when = format!("day {}", secs / DAY);
        let hours = (secs % DAY) / 3600;
        if hours > 0 {
            when.push_str(&format!(" +{hours}h"));
        }
        if business > 0 {
            when.push_str(&format!(
                " + {business} business day{}",
                if business == 1 { "" } else { "s" }
            ));
        }
        let channel = c
            .template(&t.template.name)
            .map(|t| t.channel.name.clone())
            .unwrap_or_else(|| "?".into());
        let cond = if t.when.is_some() { " (when …)" } else { "" };
        rows.push(format!(
            "| {when} | `{}` | {channel}{cond} |",
            t.template.name
        ));
    }
    if rows.is_empty() {
        return "no touches".into();
    }
    format!(
        "| when | touch | channel |\n|---|---|---|\n{}",
        rows.join("\n")
    )
}

// ------------------------------------------------------------ rename

/// Words a rename refuses besides the reserved words of §1
/// (`syntax::KEYWORDS`): settings and values read by position (`on
/// excess`, `value` after a goal's duration, the workspace's `locales`),
/// which would make the renamed file confusing to read.
const RENAME_AVOIDS: &[&str] = &["excess", "value", "locales"];

fn is_name(s: &str) -> bool {
    let mut cs = s.chars();
    matches!(cs.next(), Some('a'..='z' | '_'))
        && cs.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
        && !crate::syntax::KEYWORDS.contains(&s)
        && !RENAME_AVOIDS.contains(&s)
}

/// Why renaming `key` to `new` would clash with another declaration.
fn clash(ix: &Index, key: &Key, new: &str) -> Option<String> {
    let shared = |k: SymKind| !matches!(k, SymKind::Link | SymKind::Field | SymKind::EventField);
    ix.defs.keys().find_map(|k| {
        let same_space = if shared(key.kind) {
            shared(k.kind)
        } else {
            k.kind == key.kind && k.owner == key.owner
        };
        (same_space && k.name == new && k != key)
            .then(|| format!("`{new}` is already declared as a {}", k.kind.noun()))
    })
}

// ------------------------------------------------------------ symbols

fn symbol_kind(d: &DeclKind) -> u32 {
    // LSP SymbolKind numbers.
    match d {
        DeclKind::Workspace(_) => 2, // Module
        DeclKind::Contact(_) => 23,  // Struct
        DeclKind::Event(_) => 24,    // Event
        DeclKind::List(_) => 10,     // Enum
        DeclKind::Segment(_) => 13,  // Variable
        DeclKind::Persona(_) => 5,   // Class
        DeclKind::Template(_) => 12, // Function
        DeclKind::Scenario(_) => 3,  // Namespace
        DeclKind::Cadence(_) => 3,   // Namespace
        DeclKind::Pressure(_) => 19, // Object
        DeclKind::Topic(_) => 22,    // EnumMember
        DeclKind::Consent(_) => 14,  // Constant
    }
}

fn document_symbols(c: &Ctx) -> Value {
    let Some(file) = c.project.snap.ast(c.file) else {
        return json!([]);
    };
    let list: Vec<Value> = file
        .decls
        .iter()
        .map(|d| {
            let (name, sel) = match d.kind.name() {
                Some(n) => (n.name.clone(), n.span),
                None => (d.kind.noun().to_string(), d.span),
            };
            let mut children = Vec::new();
            let fields = match &d.kind {
                DeclKind::Contact(s) => s.fields.as_slice(),
                DeclKind::Event(e) => e.fields.as_slice(),
                _ => &[],
            };
            for f in fields {
                children.push(json!({
                    "name": f.name.name, "kind": 8, "detail": c.text(f.ty.span),
                    "range": c.range(f.name.span.to(f.ty.span)), "selectionRange": c.range(f.name.span),
                }));
            }
            if let DeclKind::Template(t) = &d.kind {
                for l in &t.links {
                    children.push(json!({
                        "name": l.name.name, "kind": 7, "detail": l.url.node,
                        "range": c.range(l.name.span.to(l.url.span)), "selectionRange": c.range(l.name.span),
                    }));
                }
            }
            json!({
                "name": name,
                "detail": d.kind.noun(),
                "kind": symbol_kind(&d.kind),
                "range": c.range(d.span),
                "selectionRange": c.range(sel),
                "children": children,
            })
        })
        .collect();
    json!(list)
}

fn workspace_symbols(server: &mut Server, query: &str) -> Value {
    server.flush();
    let q = query.to_lowercase();
    let enc = server.encoding;
    let mut out = Vec::new();
    for project in server.projects.values() {
        let snap = &project.snap;
        for f in &snap.files {
            for d in &f.decls {
                let Some(n) = d.kind.name() else { continue };
                if !n.name.to_lowercase().contains(&q) {
                    continue;
                }
                let path = &snap.sources.get(n.span.file).path;
                let Some(uri) = convert::url(&project.root.join(path)) else {
                    continue;
                };
                out.push(json!({
                    "name": n.name,
                    "kind": symbol_kind(&d.kind),
                    "containerName": d.kind.noun(),
                    "location": { "uri": uri, "range": convert::span_range(&snap.sources, n.span, enc) },
                }));
                if out.len() >= 1000 {
                    return json!(out);
                }
            }
        }
    }
    json!(out)
}

// ------------------------------------------------------------ formatting

fn formatting(server: &mut Server, uri: &Url) -> Value {
    let Some(path) = doc_path(uri) else {
        return Value::Null;
    };
    if path.extension().is_none_or(|e| e != "camp") {
        return Value::Null;
    }
    let text = match server.docs.get(&path) {
        Some(d) => d.text.clone(),
        None => match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(_) => return Value::Null,
        },
    };
    // A file that does not parse is left as it is (its diagnostics say why).
    let Ok(formatted) = crate::fmt::format_text(FileId(0), &text) else {
        return json!([]);
    };
    if formatted == text {
        return json!([]);
    }
    let f = SourceFile::new("", text.as_str());
    let end = convert::position(&f, text.len() as u32, server.encoding);
    json!([TextEdit::new(
        Range::new(Position::new(0, 0), end),
        formatted
    )])
}

// ------------------------------------------------------------ code actions

/// The suggested name of a "did you mean `x`?" help.
fn suggestion(help: &str) -> Option<&str> {
    let rest = help.split("did you mean `").nth(1)?;
    let end = rest.find('`')?;
    Some(&rest[..end])
}

const UNSUBSCRIBE_HTML: &str = "<p><a href=\"{{unsubscribe_url}}\">Unsubscribe</a></p>\n";
const UNSUBSCRIBE_TEXT: &str = "\nUnsubscribe: {{unsubscribe_url}}\n";

fn code_actions(server: &mut Server, p: &lsp_types::CodeActionParams) -> Value {
    let uri = &p.text_document.uri;
    let enc = server.encoding;
    let mut actions = Vec::new();
    let mut unsubscribe = Vec::new();
    for d in &p.context.diagnostics {
        let code = match &d.code {
            Some(lsp_types::NumberOrString::String(s)) => s.as_str(),
            _ => continue,
        };
        let help = d
            .data
            .as_ref()
            .and_then(|v| v.get("help"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| d.message.split("\nhelp: ").nth(1).map(str::to_string));
        if let Some(name) = help.as_deref().and_then(suggestion) {
            actions.push(json!({
                "title": format!("Replace with `{name}`"),
                "kind": "quickfix",
                "diagnostics": [d],
                "isPreferred": true,
                "edit": { "changes": { uri.to_string(): [TextEdit::new(d.range, name.to_string())] } },
            }));
        }
        if matches!(code, "E0515" | "E0531" | "E0532") {
            unsubscribe.push(d.clone());
        }
    }
    if !unsubscribe.is_empty()
        && let Some((project, _, rel)) = server.analysed(uri)
        && let Some(id) = project.snap.file_id(&rel)
    {
        for d in unsubscribe {
            let file = project.snap.sources.get(id);
            let start = convert::offset(file, d.range.start, enc);
            let end = convert::offset(file, d.range.end, enc).max(start);
            let text = &file.text[start..end];
            let text_part = d.code == Some(lsp_types::NumberOrString::String("E0532".into()));
            let insert = if text_part {
                UNSUBSCRIBE_TEXT
            } else {
                UNSUBSCRIBE_HTML
            };
            // Where the body is: this template file, the `file("…")` named
            // here, or the string literal here.
            let target: Option<(String, usize)> = if !file.camp {
                Some((rel.clone(), body_end(&file.text)))
            } else if let Some(p) = text.strip_prefix("file(") {
                let written = p.trim_start().trim_start_matches('"');
                let written = written.split('"').next().unwrap_or("");
                crate::plan::resolve_template_path(&rel, written).and_then(|path| {
                    let id = project.snap.file_id(&path)?;
                    Some((path, body_end(&project.snap.sources.get(id).text)))
                })
            } else if text.ends_with('"') && text.len() >= 2 {
                Some((rel.clone(), end - 1))
            } else {
                None
            };
            let Some((path, at)) = target else { continue };
            let Some(tid) = project.snap.file_id(&path) else {
                continue;
            };
            let tf = project.snap.sources.get(tid);
            let Some(turi) = convert::url(&project.root.join(&path)) else {
                continue;
            };
            let pos = convert::position(tf, at as u32, enc);
            let insert = if tf.camp {
                // Inside a `.camp` string: escaped quotes, no line break.
                insert.trim().replace('"', "\\\"")
            } else {
                insert.to_string()
            };
            actions.push(json!({
                "title": "Add the `{{unsubscribe_url}}` link",
                "kind": "quickfix",
                "diagnostics": [d],
                "edit": { "changes": { turi.to_string(): [TextEdit::new(Range::new(pos, pos), insert)] } },
            }));
        }
    }
    json!(actions)
}

/// Where to add to an HTML or text body: before `</body>` when there is
/// one, else at the end.
fn body_end(text: &str) -> usize {
    text.rfind("</body>").unwrap_or(text.len())
}

// ------------------------------------------------------------ semantic tokens

fn semantic_tokens(c: &Ctx) -> Value {
    let file = c.source(c.file);
    let mut data = Vec::new();
    let (mut line, mut col) = (0u32, 0u32);
    let mut last_end: Option<u32> = None;
    for o in c.ix.in_file(c.file) {
        // One token per place, no overlaps.
        if last_end.is_some_and(|e| o.span.start < e) || o.span.is_empty() {
            continue;
        }
        let p = convert::position(file, o.span.start, c.enc);
        let e = convert::position(file, o.span.end, c.enc);
        if e.line != p.line {
            continue;
        }
        let dl = p.line - line;
        let dc = if dl == 0 {
            p.character - col
        } else {
            p.character
        };
        data.extend([
            dl,
            dc,
            e.character - p.character,
            token_type(o.key.kind),
            u32::from(o.def),
        ]);
        line = p.line;
        col = p.character;
        last_end = Some(o.span.end);
    }
    json!({ "data": data })
}

// ------------------------------------------------------------ folding

fn folding(c: &Ctx) -> Value {
    let file = c.source(c.file);
    if !file.camp {
        return json!([]);
    }
    let mut out = Vec::new();
    let mut stack = Vec::new();
    let text = &*file.text;
    let b = text.as_bytes();
    let mut i = 0;
    let mut comment_start: Option<(usize, usize)> = None; // (first line, last line)
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'/') => {
                let line = file.line_col(i as u32).0;
                comment_start = match comment_start {
                    Some((s, l)) if l + 1 == line => Some((s, line)),
                    Some((s, l)) => {
                        if l > s {
                            out.push(
                                json!({ "startLine": s - 1, "endLine": l - 1, "kind": "comment" }),
                            );
                        }
                        Some((line, line))
                    }
                    None => Some((line, line)),
                };
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let start = file.line_col(i as u32).0;
                let end = text[i + 2..].find("*/").map_or(b.len(), |e| i + 2 + e + 2);
                let last = file.line_col(end as u32).0;
                if last > start {
                    out.push(
                        json!({ "startLine": start - 1, "endLine": last - 1, "kind": "comment" }),
                    );
                }
                i = end;
                continue;
            }
            b'{' => stack.push(file.line_col(i as u32).0),
            b'}' => {
                if let Some(start) = stack.pop() {
                    let end = file.line_col(i as u32).0;
                    if end > start + 1 {
                        out.push(json!({ "startLine": start - 1, "endLine": end - 2 }));
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    if let Some((s, l)) = comment_start
        && l > s
    {
        out.push(json!({ "startLine": s - 1, "endLine": l - 1, "kind": "comment" }));
    }
    json!(out)
}
