//! The plan form of the v1.1 operational attributes: a task's `due`, a
//! webhook's `method` and `header` lines. A template's `from`,
//! `reply_to` and `assignee` are parts like its bodies.

use sha2::{Digest, Sha256};

use super::{HeaderPiece, RequestHeader};
use crate::syntax::ast;

/// (`due_seconds`, `method`, `request_headers`) of `t`; each one, when
/// present, is added to the content hash `whole` (so the hash of a template
/// without them is unchanged).
pub(super) fn operational(
    t: &ast::Template,
    whole: &mut Sha256,
) -> (Option<i64>, Option<String>, Vec<RequestHeader>) {
    let attr = |name: &str| t.attrs.iter().find(|a| a.name.name == name);
    let due = match (t.channel.name.as_str(), attr("due").map(|a| &a.value.node)) {
        ("task", Some(ast::AttrValue::Duration(d))) => Some(d.seconds()),
        _ => None,
    };
    let method = match (
        t.channel.name.as_str(),
        attr("method").map(|a| &a.value.node),
    ) {
        ("webhook", Some(ast::AttrValue::Word(w))) => Some(w.clone()),
        _ => None,
    };
    let headers: Vec<RequestHeader> = if t.channel.name == "webhook" {
        t.headers
            .iter()
            .map(|h| RequestHeader {
                name: h.name.node.clone(),
                value: h
                    .value
                    .iter()
                    .map(|p| match p {
                        ast::HeaderPiece::Text(s) => HeaderPiece::Text(s.node.clone()),
                        ast::HeaderPiece::Env(e) => HeaderPiece::Env(e.node.clone()),
                    })
                    .collect(),
            })
            .collect()
    } else {
        Vec::new()
    };
    if let Some(d) = due {
        whole.update(format!("due\0{d}\0").as_bytes());
    }
    if let Some(m) = &method {
        whole.update(format!("method\0{m}\0").as_bytes());
    }
    for h in &headers {
        whole.update(b"header\0");
        whole.update(h.name.as_bytes());
        for p in &h.value {
            match p {
                HeaderPiece::Text(s) => {
                    whole.update(b"\0text\0");
                    whole.update(s.as_bytes());
                }
                HeaderPiece::Env(e) => {
                    whole.update(b"\0env\0");
                    whole.update(e.as_bytes());
                }
            }
        }
        whole.update([0]);
    }
    (due, method, headers)
}

/// What a hand-edited plan may get wrong in these fields: `(path, why)`.
pub(super) fn validate(path: &str, t: &super::Template) -> Result<(), (String, String)> {
    if t.due_seconds.is_some_and(|d| d < 0) {
        return Err((format!("{path}.due_seconds"), "must be 0 or more".into()));
    }
    if t.due_seconds.is_some() && t.channel != "task" {
        return Err((
            format!("{path}.due_seconds"),
            "only `task` templates have a due time".into(),
        ));
    }
    if let Some(m) = &t.method
        && (t.channel != "webhook" || !["POST", "PUT", "PATCH"].contains(&m.as_str()))
    {
        return Err((
            format!("{path}.method"),
            "must be `POST`, `PUT` or `PATCH`, on a `webhook` template".into(),
        ));
    }
    if !t.request_headers.is_empty() && t.channel != "webhook" {
        return Err((
            format!("{path}.request_headers"),
            "only `webhook` templates have headers".into(),
        ));
    }
    for (i, h) in t.request_headers.iter().enumerate() {
        let name_ok = !h.name.is_empty()
            && h.name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !name_ok {
            return Err((
                format!("{path}.request_headers[{i}].name"),
                "must be an HTTP header name".into(),
            ));
        }
        for (j, p) in h.value.iter().enumerate() {
            let ok = match p {
                HeaderPiece::Text(s) => !s.chars().any(|c| c.is_control() && c != '\t'),
                HeaderPiece::Env(e) => {
                    let mut c = e.chars();
                    c.next()
                        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                        && c.all(|c| c.is_ascii_alphanumeric() || c == '_')
                }
            };
            if !ok {
                return Err((
                    format!("{path}.request_headers[{i}].value[{j}]"),
                    "must be one line of text, or an environment variable name".into(),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Template;

    fn webhook() -> Template {
        Template {
            channel: "webhook".into(),
            kind: "operational".into(),
            address_field: None,
            parts: Default::default(),
            links: Default::default(),
            link_order: Vec::new(),
            headers: Default::default(),
            content_hash: String::new(),
            due_seconds: None,
            method: Some("PUT".into()),
            request_headers: vec![RequestHeader {
                name: "Authorization".into(),
                value: vec![
                    HeaderPiece::Text("Bearer ".into()),
                    HeaderPiece::Env("CRM_TOKEN".into()),
                ],
            }],
            topic: None,
            expires_seconds: None,
            priority: None,
            variants: Default::default(),
        }
    }

    #[test]
    fn hand_edited_operational_fields_are_refused() {
        assert_eq!(validate("$", &webhook()), Ok(()));
        let mut t = webhook();
        t.method = Some("GET".into());
        assert_eq!(validate("$", &t).unwrap_err().0, "$.method");
        let mut t = webhook();
        t.request_headers[0].value[1] = HeaderPiece::Env("CRM-TOKEN".into());
        assert_eq!(
            validate("$", &t).unwrap_err().0,
            "$.request_headers[0].value[1]"
        );
        let mut t = webhook();
        t.request_headers[0].value[0] = HeaderPiece::Text("a\r\nX-Injected: 1".into());
        assert!(validate("$", &t).is_err());
        let mut t = webhook();
        t.due_seconds = Some(86_400);
        assert_eq!(validate("$", &t).unwrap_err().0, "$.due_seconds");
    }
}
