//! Checks of the v1.1 sender and operational attributes: an email's
//! `from` and `reply_to`, a task's `due`, a webhook's `method` and
//! `header` lines (LANGUAGE.md §12). The rendered `from` and `reply_to`
//! are checked per persona by `render::senders`.

use std::collections::HashMap;

use super::Project;
use crate::diagnostics::{Code, Diagnostic, Problems};
use crate::syntax::ast::*;

/// The webhook methods, in the order the help lists them.
pub const METHODS: [&str; 3] = ["POST", "PUT", "PATCH"];

/// Headers the transport sets itself: a template may not set them.
const RESERVED_HEADERS: [&str; 4] = ["host", "content-length", "transfer-encoding", "connection"];

/// `due`, `method`, `from`, `reply_to` on a template whose channel has them.
pub(super) fn check_attr(
    _p: &Project,
    t: &Template,
    name: &str,
    a: &Attr,
    problems: &mut Problems,
) {
    match name {
        "due" => {
            if !matches!(a.value.node, AttrValue::Duration(_)) {
                problems.push(
                    Diagnostic::new(
                        Code::E0112,
                        "`due` takes a duration after the send, like `1d` or `4h`",
                    )
                    .at(a.value.span, "not a duration")
                    .help("write `due = 1d` (no quotes): the task is due that long after it is sent"),
                );
            }
        }
        "method" => {
            let ok = matches!(&a.value.node, AttrValue::Word(w) if METHODS.contains(&w.as_str()));
            if !ok {
                let shown = match &a.value.node {
                    AttrValue::Word(w) | AttrValue::Str(w) => w.clone(),
                    AttrValue::File(f) => f.node.clone(),
                    AttrValue::Duration(d) => crate::render::duration_text(d.seconds()),
                };
                let upper = shown.to_ascii_uppercase();
                let help = if METHODS.contains(&upper.as_str()) {
                    format!("write `method = {upper}`: a bare word in capitals")
                } else {
                    "a webhook is called with `method = POST` (the default), `PUT` or `PATCH`"
                        .to_string()
                };
                problems.push(
                    Diagnostic::new(
                        Code::E0582,
                        format!("`{shown}` is not a webhook method"),
                    )
                    .at(a.value.span, "expected POST, PUT or PATCH")
                    .help(help),
                );
            }
        }
        // `from` and `reply_to`.
        _ => match &a.value.node {
            AttrValue::Str(s) if !s.contains("{{") => {
                if let Err(e) = crate::mailbox::parse_mailbox(s) {
                    problems.push(
                        Diagnostic::new(
                            Code::E0580,
                            format!(
                                "the `{name}` of `{}` is not one mailbox: {}",
                                t.name.name, e.message
                            ),
                        )
                        .at(a.value.span, "not one RFC 5322 mailbox")
                        .help(e.help),
                    );
                }
            }
            // A template: rendered and checked for every persona.
            AttrValue::Str(_) | AttrValue::File(_) => {}
            AttrValue::Word(w) => problems.push(
                Diagnostic::new(
                    Code::E0112,
                    format!("`{name}` takes a string, not `{w}`"),
                )
                .at(a.value.span, "expected a string")
                .help(format!(
                    "write `{name} = \"Acme <hello@acme.example>\"` or insert contact values: `{name} = \"{{{{owner_name}}}} <{{{{owner_email}}}}>\"`"
                )),
            ),
            AttrValue::Duration(_) => problems.push(
                Diagnostic::new(Code::E0112, format!("`{name}` takes a string, not a duration"))
                    .at(a.value.span, "expected a string")
                    .help(format!("write `{name} = \"Acme <hello@acme.example>\"`")),
            ),
        },
    }
}

/// Whether `s` is an RFC 9110 token (a header name).
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn is_env_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The `header` lines of a template: webhooks only, valid names given once,
/// literal one-line values, valid `env("NAME")` names.
pub(super) fn check_headers(t: &Template, problems: &mut Problems) {
    if t.headers.is_empty() {
        return;
    }
    if t.channel.name != "webhook" {
        if let Some(h) = t.headers.first() {
            problems.push(
                Diagnostic::new(
                    Code::E0583,
                    format!("`{}` templates have no headers", t.channel.name),
                )
                .at(h.name.span, "only webhooks have `header` lines")
                .help("remove the `header` line: only `webhook` templates are HTTP requests"),
            );
        }
        return;
    }
    let mut seen: HashMap<String, crate::diagnostics::Span> = HashMap::new();
    for h in &t.headers {
        let name = &h.name.node;
        if !is_token(name) {
            problems.push(
                Diagnostic::new(Code::E0583, format!("`{name}` is not a header name"))
                    .at(h.name.span, "not an HTTP header name")
                    .help("a header name is letters, digits and `-` (no spaces or `:`), like \"X-Api-Key\""),
            );
            continue;
        }
        let lower = name.to_ascii_lowercase();
        if RESERVED_HEADERS.contains(&lower.as_str()) {
            problems.push(
                Diagnostic::new(
                    Code::E0583,
                    format!("`{name}` is set by the HTTP client, not by a template"),
                )
                .at(h.name.span, "reserved header")
                .help("remove this header: the runner sets it for each request"),
            );
            continue;
        }
        if let Some(first) = seen.get(&lower) {
            problems.push(
                Diagnostic::new(Code::E0105, format!("header `{name}` is given twice"))
                    .at(h.name.span, "given again here")
                    .also(*first, "first given here")
                    .help("give each header once (names are compared without regard to case)"),
            );
            continue;
        }
        seen.insert(lower, h.name.span);
        for piece in &h.value {
            match piece {
                HeaderPiece::Text(s) if s.node.chars().any(|c| c.is_control() && c != '\t') => {
                    problems.push(
                        Diagnostic::new(
                            Code::E0583,
                            format!("the value of header `{name}` contains a line break or a control character"),
                        )
                        .at(s.span, "one line of text expected")
                        .help("a header value is one line: remove `\\n`, `\\r` and other control characters"),
                    );
                }
                HeaderPiece::Text(s) if s.node.contains("{{") => {
                    problems.push(
                        Diagnostic::new(
                            Code::E0583,
                            format!("the value of header `{name}` is literal text, not a template"),
                        )
                        .at(s.span, "`{{…}}` is not rendered here")
                        .help("header values are sent as written, with `env(\"NAME\")` for secrets; put contact values in the body or the URL"),
                    );
                }
                HeaderPiece::Env(e) if !is_env_name(&e.node) => {
                    problems.push(
                        Diagnostic::new(
                            Code::E0584,
                            format!("`{}` is not an environment variable name", e.node),
                        )
                        .at(e.span, "not a variable name")
                        .help("write letters, digits and `_`, not starting with a digit, like `env(\"CRM_TOKEN\")`"),
                    );
                }
                _ => {}
            }
        }
    }
}
