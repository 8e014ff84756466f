//! Email: a [`Composed`] message as real MIME (lettre's builder), sent over
//! SMTP (lettre's synchronous transport, TLS by rustls), and the same bytes
//! offline for `relance render --format eml` (docs/delivery.md, "Email").
//!
//! The layout: `multipart/alternative` with the text part first and the
//! HTML part last (readers show the last one they can), or one
//! `text/plain` part when the message has no HTML. Header values are
//! encoded per RFC 2047 where they are not ASCII (lettre's encoder), and
//! nothing a contact's data holds can add a header: line breaks in a
//! subject become spaces, a `From` or `Reply-To` must be one mailbox, a
//! header value with a control character is refused.
//!
//! The output is deterministic: `Date` comes from the message's instant,
//! `Message-ID` from its idempotency key, and the MIME boundary from a
//! hash of the key and the parts, so the same message gives the same bytes.

use std::time::{Duration, SystemTime};

use lettre::Transport as _;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, Message, MultiPart, SinglePart};

use super::{Attempt, Composed};

/// `Message-ID: <KEY@DOMAIN>`: the key with every byte outside RFC 5322's
/// `atext` (and `%`, and a `.` that a dot-atom cannot hold there)
/// percent-encoded, so that two keys never give one id; `DOMAIN` is the
/// domain of the `From` address.
pub fn message_id(key: &str, from_domain: &str) -> String {
    const ATEXT: &[u8] = b"!#$&'*+-/=?^_`{|}~";
    let bytes = key.as_bytes();
    let mut id = String::with_capacity(key.len() + from_domain.len() + 3);
    id.push('<');
    for (i, &b) in bytes.iter().enumerate() {
        let dot_ok = b == b'.' && i > 0 && i + 1 < bytes.len() && bytes[i - 1] != b'.';
        if b.is_ascii_alphanumeric() || ATEXT.contains(&b) || dot_ok {
            id.push(b as char);
        } else {
            id.push_str(&format!("%{b:02X}"));
        }
    }
    if key.is_empty() {
        id.push_str("%00");
    }
    id.push('@');
    id.push_str(from_domain);
    id.push('>');
    id
}

/// One RFC 5322 mailbox (relance's parser, `crate::mailbox`) as lettre's.
/// The `Message-ID` of the email with idempotency key `key` sent from
/// `from` (the template's rendered `from`, else the workspace's): what
/// [`message`] writes, for the ledger to show before and after sending.
/// `None` when `from` is not one mailbox.
pub fn message_id_from(key: &str, from: &str) -> Option<String> {
    let from = mailbox("sender", from).ok()?;
    Some(message_id(key, from.email.domain()))
}

fn mailbox(what: &str, value: &str) -> Result<Mailbox, String> {
    let m = crate::mailbox::parse_mailbox(value)
        .map_err(|e| format!("the {what} `{value}` is not one mailbox: {}", e.message))?;
    let address = lettre::Address::new(&m.local, &m.domain)
        .map_err(|e| format!("the {what} address `{}` is not valid: {e}", m.address()))?;
    Ok(Mailbox::new(m.display_name, address))
}

/// A one-line header text: line breaks and other control characters of
/// a contact's data become spaces.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The MIME message of an email `c`.
///
/// Errors (a send would be [`Attempt::Failed`]): not an email, no
/// recipient address, no or a bad `From`, a bad `Reply-To` or header.
pub fn message(c: &Composed) -> Result<Message, String> {
    if c.channel != "email" {
        return Err(format!(
            "`{}` is a {} template, not an email",
            c.template, c.channel
        ));
    }
    let Some(to) = c.to.as_deref() else {
        return Err("the contact has no email address".into());
    };
    let to = mailbox("recipient", to)?;
    let Some(from) = c.from.as_deref() else {
        return Err(
            "the message has no sender: set `from` in the workspace or the template".into(),
        );
    };
    let from = mailbox("sender", from)?;
    let date = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(c.at).unwrap_or(0));
    let mut b = Message::builder()
        .message_id(Some(message_id(&c.key, from.email.domain())))
        .from(from)
        .to(to)
        .date(date)
        .subject(one_line(c.parts.get("subject").map_or("", String::as_str)));
    if let Some(r) = c.reply_to.as_deref() {
        b = b.reply_to(mailbox("reply-to", r)?);
    }
    for (name, value) in &c.headers {
        if value.chars().any(char::is_control) {
            return Err(format!("the `{name}` header holds a control character"));
        }
        let name = HeaderName::new_from_ascii(name.clone())
            .map_err(|_| format!("`{name}` is not a header name"))?;
        b = b.raw_header(HeaderValue::new(name, value.clone()));
    }
    let text = c.parts.get("text").cloned().unwrap_or_default();
    let m = match c.parts.get("html") {
        Some(html) => b.multipart(
            MultiPart::alternative()
                .boundary(boundary(c))
                .singlepart(SinglePart::plain(text))
                .singlepart(SinglePart::html(html.clone())),
        ),
        None => b.singlepart(SinglePart::plain(text)),
    };
    m.map_err(|e| format!("the message cannot be built: {e}"))
}

/// A MIME boundary that depends only on the message: `relance-` and 32
/// hex digits of a SHA-256 over the key and the parts (a boundary must not
/// occur in the parts; one made of their hash does not, in practice).
fn boundary(c: &Composed) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(c.key.as_bytes());
    for (k, v) in &c.parts {
        h.update([0]);
        h.update(k.as_bytes());
        h.update([0]);
        h.update(v.as_bytes());
    }
    format!("relance-{}", &super::hex(&h.finalize())[..32])
}

/// The message as it goes on the wire (CRLF line ends): the `.eml` file.
pub fn eml(c: &Composed) -> Result<Vec<u8>, String> {
    Ok(message(c)?.formatted())
}

/// `relance render TEMPLATE --persona P --format eml`: the email that
/// `relance serve` would send to a contact with the persona's values,
/// composed from `plan` ([`super::compose`]) at `now` (the `Date`), with
/// the persona's preview unsubscribe URL and `trigger` fields, and the
/// idempotency key `TEMPLATE.PERSONA` (so `Message-ID:
/// <TEMPLATE.PERSONA@DOMAIN>`). The same inputs give the same bytes.
pub fn persona_eml(
    project: &crate::render::RenderProject,
    plan: &crate::plan::Plan,
    template: &str,
    persona: &str,
    now: i64,
) -> Result<Vec<u8>, String> {
    // Unknown names, templates with errors: the messages of `render`.
    project
        .render_one(template, persona)
        .map_err(|e| e.to_string())?;
    let contact = project
        .persona_contact(persona)
        .ok_or_else(|| format!("no persona is named `{persona}`"))?;
    let trigger = project
        .persona_trigger(template, persona)
        .unwrap_or_default();
    let c = super::compose::Composer::new(plan).compose_triggered(
        template,
        &contact,
        &trigger,
        now,
        None,
        &crate::render::preview_unsubscribe_url(persona),
        &crate::render::preview_preferences_url(persona),
        &format!("{template}.{persona}"),
    )?;
    if c.channel != "email" {
        return Err(format!(
            "`{template}` is a {} template: `--format eml` shows emails only (use `--format text` or `json`)",
            c.channel
        ));
    }
    eml(&c)
}

/// An SMTP relay, from a URL:
///
/// - `smtp://HOST[:PORT]`: plain SMTP (port 25 by default), no TLS: for
///   a relay on the same host or network (and tests);
/// - `smtp://HOST[:PORT]?tls=opportunistic`: STARTTLS when the server
///   offers it, else plain (port 587 by default);
/// - `smtp://HOST[:PORT]?tls=required`: STARTTLS or no send (port 587);
/// - `smtps://HOST[:PORT]`: TLS from the first byte (port 465).
///
/// TLS is rustls with the Mozilla roots (`webpki-roots`, built in), so the
/// host's certificate store is not read; the certificate must name HOST.
/// A path (`smtp://HOST/NAME`) sets the EHLO name (default `localhost`).
/// User and password come from [`Smtp::new`] (or the URL's
/// `user:password@`). Each send opens a connection; a command that gets
/// no answer within 30 seconds fails the attempt (retried).
pub struct Smtp {
    transport: lettre::SmtpTransport,
}

impl std::fmt::Debug for Smtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Smtp { .. }")
    }
}

/// How long one SMTP command may wait for its answer.
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

impl Smtp {
    pub fn new(url: &str, user: Option<&str>, password: Option<&str>) -> Result<Smtp, String> {
        let scheme_ok = url.starts_with("smtp://") || url.starts_with("smtps://");
        if !scheme_ok {
            return Err(format!(
                "`{url}` is not an SMTP URL: write `smtp://HOST:PORT` or `smtps://HOST:PORT`"
            ));
        }
        let mut b = lettre::SmtpTransport::from_url(url)
            .map_err(|e| format!("`{url}` is not a usable SMTP URL: {e}"))?
            .timeout(Some(SMTP_TIMEOUT));
        match (user, password) {
            (Some(u), p) => {
                let creds = lettre::transport::smtp::authentication::Credentials::new(
                    u.to_string(),
                    p.unwrap_or("").to_string(),
                );
                b = b.credentials(creds);
            }
            (None, Some(_)) => return Err("an SMTP password needs a user".into()),
            (None, None) => {}
        }
        Ok(Smtp {
            transport: b.build(),
        })
    }

    /// Sends `c`; see [`classify`] for what each outcome becomes.
    pub fn send(&self, c: &Composed) -> Attempt {
        match message(c) {
            Ok(m) => self.send_message(&m),
            Err(error) => Attempt::Failed { error },
        }
    }

    /// Sends a built message to its `To`, from its `From` (the envelope).
    pub fn send_message(&self, m: &Message) -> Attempt {
        classify(self.transport.send(m))
    }
}

/// An SMTP outcome as an [`Attempt`]: a positive answer is delivered (its
/// code and text as detail); a 4xx answer, a connection that fails, times
/// out or breaks, a TLS failure or an answer that cannot be read is
/// retried; a 5xx answer fails for good, and so does a message lettre
/// cannot send at all (its client errors).
pub fn classify(
    r: Result<lettre::transport::smtp::response::Response, lettre::transport::smtp::Error>,
) -> Attempt {
    match r {
        Ok(resp) => Attempt::Delivered {
            detail: format!(
                "{} {}",
                resp.code(),
                resp.message().collect::<Vec<_>>().join(" ")
            )
            .trim_end()
            .to_string(),
        },
        Err(e) if e.is_permanent() => Attempt::Failed {
            error: format!("SMTP: {e}"),
        },
        Err(e) if e.is_client() => Attempt::Failed {
            error: format!("SMTP: {e}"),
        },
        Err(e) => Attempt::Retry {
            error: format!("SMTP: {e}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn composed() -> Composed {
        let mut parts = BTreeMap::new();
        parts.insert("subject".into(), "Déjà vu\r\nBcc: evil@x.example".into());
        parts.insert("html".into(), "<p>Bonjour Zoé</p>".into());
        parts.insert("text".into(), "Bonjour Zoé".into());
        let mut headers = BTreeMap::new();
        headers.insert(
            "List-Unsubscribe".into(),
            "<https://r.example/u/T.K>".into(),
        );
        headers.insert(
            "List-Unsubscribe-Post".into(),
            "List-Unsubscribe=One-Click".into(),
        );
        Composed {
            template: "offer".into(),
            channel: "email".into(),
            kind: "marketing".into(),
            to: Some("zoe@example.com".into()),
            from: Some("\"Émile, at Shop\" <hello@shop.example>".into()),
            reply_to: Some("help@shop.example".into()),
            parts,
            headers,
            key: "c1/offer/1780000000".into(),
            at: 1_780_000_000,
        }
    }

    fn text(c: &Composed) -> String {
        String::from_utf8(eml(c).expect("builds")).expect("ASCII")
    }

    #[test]
    fn message_ids_are_stable_and_injective() {
        assert_eq!(
            message_id("c1.offer", "shop.example"),
            "<c1.offer@shop.example>"
        );
        assert_eq!(
            message_id("c 1:x%", "shop.example"),
            "<c%201%3Ax%25@shop.example>"
        );
        assert_eq!(message_id(".a..b.", "d"), "<%2Ea.%2Eb%2E@d>");
        assert_ne!(message_id("a b", "d"), message_id("a%20b", "d"));
        assert_eq!(message_id("", "d"), "<%00@d>");
    }

    #[test]
    fn the_mime_message_has_every_header_once_and_is_deterministic() {
        let c = composed();
        let m = text(&c);
        assert_eq!(m, text(&c), "same message, same bytes");
        let head = &m[..m.find("\r\n\r\n").expect("a header block")];
        assert!(
            head.contains("Message-ID: <c1/offer/1780000000@shop.example>"),
            "{head}"
        );
        assert!(head.contains("Date: "), "{head}");
        assert!(head.contains("To: zoe@example.com"), "{head}");
        assert!(head.contains("Reply-To: help@shop.example"), "{head}");
        assert!(
            head.contains("List-Unsubscribe: <https://r.example/u/T.K>"),
            "{head}"
        );
        assert!(
            head.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"),
            "{head}"
        );
        assert!(head.contains("multipart/alternative"), "{head}");
        // RFC 2047 for the UTF-8 subject and display name; the line break
        // of the data did not make a header.
        assert!(head.contains("Subject: =?utf-8?"), "{head}");
        assert!(!head.contains("\r\nBcc:"), "{head}");
        assert!(
            head.lines().any(|l| l.starts_with("From: =?utf-8?")),
            "{head}"
        );
        assert!(m.is_ascii());
    }

    #[test]
    fn text_only_and_refusals() {
        let mut c = composed();
        c.parts.remove("html");
        let m = text(&c);
        assert!(!m.contains("multipart"), "{m}");
        assert!(m.contains("Content-Type: text/plain; charset=utf-8"), "{m}");
        let mut c = composed();
        c.to = None;
        assert!(matches!(message(&c), Err(e) if e.contains("no email address")));
        let mut c = composed();
        c.from = Some("a, b <x@y.example>".into());
        assert!(message(&c).is_err());
        let mut c = composed();
        c.headers
            .insert("List-Unsubscribe".into(), "<https://x\r\nBcc: y>".into());
        assert!(message(&c).is_err());
        let mut c = composed();
        c.channel = "sms".into();
        assert!(message(&c).is_err());
    }

    #[test]
    fn smtp_urls() {
        assert!(Smtp::new("smtp://127.0.0.1:2525", None, None).is_ok());
        assert!(Smtp::new("smtps://mail.example:465", Some("u"), Some("p")).is_ok());
        assert!(Smtp::new("smtp://mail.example?tls=required", None, None).is_ok());
        assert!(Smtp::new("http://mail.example", None, None).is_err());
        assert!(Smtp::new("smtp://", None, None).is_err());
        assert!(Smtp::new("smtp://h", None, Some("p")).is_err());
    }

    #[test]
    fn a_closed_port_is_retried_and_no_address_fails() {
        // A port nothing listens on: bind one, then close it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let smtp = Smtp::new(&format!("smtp://127.0.0.1:{port}"), None, None).expect("url");
        assert!(matches!(smtp.send(&composed()), Attempt::Retry { .. }));
        let mut c = composed();
        c.to = None;
        assert!(matches!(smtp.send(&c), Attempt::Failed { .. }));
    }
}
