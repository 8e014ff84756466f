//! Unsubscribe links: tokens signed with a secret of the deployment, and
//! the two pages a recipient sees (docs/delivery.md, "Unsubscribe tokens").
//!
//! A token names a contact, a channel and, optionally, a topic:
//!
//! ```text
//! TOKEN   = B64(PAYLOAD) "." B64(MAC)
//! PAYLOAD = CHANNEL 0x00 TOPIC 0x00 CONTACT      (TOPIC empty: no topic)
//! MAC     = first 16 bytes of HMAC-SHA256(secret, "relance-unsubscribe-v1" 0x00 PAYLOAD)
//! B64     = base64url without padding (RFC 4648 §5)
//! ```
//!
//! Only characters `A–Z a–z 0–9 - _ .` appear, so a token goes in a URL
//! path as it is (`https://…/u/TOKEN`). The contact id comes last and may
//! hold any character, so the payload splits without ambiguity. A token is
//! accepted only when it decodes canonically (a token that differs in any
//! byte from the one made is refused, even where base64 would read the
//! same bytes) and its MAC matches, compared in constant time. Nothing else
//! is stored: the secret is the whole state. Changing the secret makes
//! every link sent so far [`Forged`].

use std::fmt;

use super::hmac_sha256;
use crate::plan::Plan;
use crate::render::escape_html;

/// What the MAC covers besides the payload: the format's version.
const DOMAIN: &[u8] = b"relance-unsubscribe-v1\0";

/// Bytes of the HMAC kept in a token (128 bits).
const MAC_BYTES: usize = 16;

/// The longest token examined; longer ones are refused unread.
pub const MAX_TOKEN: usize = 2048;

/// What a valid token says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    pub contact: String,
    /// `email`, `sms` or `push`.
    pub channel: String,
    /// A key of the plan's `topics`; `None`: every marketing message of
    /// the channel.
    pub topic: Option<String>,
}

/// A token that was not made with this deployment's secret, or was
/// altered: the recipient gets a 403 and nothing is recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Forged;

impl fmt::Display for Forged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("this unsubscribe link is not valid: it was altered or made elsewhere")
    }
}

impl std::error::Error for Forged {}

/// Makes and checks tokens under one secret.
#[derive(Clone)]
pub struct Signer {
    secret: Vec<u8>,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the secret.
        f.write_str("Signer { .. }")
    }
}

impl Signer {
    pub fn new(secret: &[u8]) -> Signer {
        Signer {
            secret: secret.to_vec(),
        }
    }

    fn mac(&self, payload: &[u8]) -> [u8; MAC_BYTES] {
        let mut data = Vec::with_capacity(DOMAIN.len() + payload.len());
        data.extend_from_slice(DOMAIN);
        data.extend_from_slice(payload);
        let full = hmac_sha256(&self.secret, &data);
        let mut mac = [0u8; MAC_BYTES];
        mac.copy_from_slice(&full[..MAC_BYTES]);
        mac
    }

    /// The token of `contact` on `channel`, for `topic` (or every topic).
    pub fn token(&self, contact: &str, channel: &str, topic: Option<&str>) -> String {
        let mut payload = Vec::with_capacity(channel.len() + contact.len() + 16);
        payload.extend_from_slice(channel.as_bytes());
        payload.push(0);
        payload.extend_from_slice(topic.unwrap_or("").as_bytes());
        payload.push(0);
        payload.extend_from_slice(contact.as_bytes());
        let mac = self.mac(&payload);
        format!("{}.{}", b64_encode(&payload), b64_encode(&mac))
    }

    /// What `token` says, when this secret made it unchanged.
    pub fn verify(&self, token: &str) -> Result<Claim, Forged> {
        if token.len() > MAX_TOKEN {
            return Err(Forged);
        }
        let (payload, mac) = token.split_once('.').ok_or(Forged)?;
        let payload = b64_decode(payload).ok_or(Forged)?;
        let mac = b64_decode(mac).ok_or(Forged)?;
        if mac.len() != MAC_BYTES || !same(&mac, &self.mac(&payload)) {
            return Err(Forged);
        }
        let mut parts = payload.splitn(3, |&b| b == 0);
        let (Some(channel), Some(topic), Some(contact)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(Forged);
        };
        let text = |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|_| Forged);
        Ok(Claim {
            channel: text(channel)?,
            topic: (!topic.is_empty()).then(|| text(topic)).transpose()?,
            contact: text(contact)?,
        })
    }
}

/// Equal, in a time that depends only on the lengths.
fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y));
    std::hint::black_box(diff) == 0
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// base64url without padding.
fn b64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// The bytes of canonical base64url without padding: any other spelling
/// (padding, other characters, unused bits set) is `None`.
fn b64_decode(text: &str) -> Option<Vec<u8>> {
    if text.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() / 4 * 3 + 2);
    for chunk in text.as_bytes().chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            let v = B64.iter().position(|&x| x == c)? as u32;
            n |= v << (18 - 6 * i);
        }
        for i in 0..chunk.len() - 1 {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    // Unused bits set would give a second spelling of the same bytes.
    (b64_encode(&out) == text).then_some(out)
}

/// What the recipient leaves: "the newsletter (The monthly newsletter)"
/// or "all marketing emails".
fn what(plan: &Plan, claim: &Claim) -> String {
    let noun = match claim.channel.as_str() {
        "sms" => "text messages",
        "push" => "notifications",
        _ => "emails",
    };
    match &claim.topic {
        Some(topic) => {
            let label = plan.topics.get(topic).map_or(topic.as_str(), |t| &t.label);
            format!("{noun} about “{label}”")
        }
        None => format!("all marketing {noun}"),
    }
}

/// A whole page: accessible, one column, no script and no external
/// resource (no font, image or style sheet is fetched).
fn page(plan: &Plan, title: &str, body: &str) -> String {
    let sender = plan.workspace.name.as_deref().unwrap_or("the sender");
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
<meta name=\"robots\" content=\"noindex\">\n<title>{title} · {sender}</title>\n\
<style>body{{font:1.05rem/1.5 system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;color:#1a1a1a;background:#fff}}\
button{{font:inherit;padding:.6rem 1.2rem;border:2px solid #1a1a1a;border-radius:.3rem;background:#1a1a1a;color:#fff;cursor:pointer}}\
button:focus{{outline:3px solid #0a58ca;outline-offset:2px}}</style>\n</head>\n<body>\n<main>\n<h1>{title}</h1>\n{body}</main>\n</body>\n</html>\n",
        title = escape_html(title),
        sender = escape_html(sender),
    )
}

/// The page at `GET /u/TOKEN`: what the link stops, and a button that
/// posts to the same URL (with the body of RFC 8058's one-click POST,
/// `List-Unsubscribe=One-Click`, so both take one path).
pub fn unsubscribe_page(plan: &Plan, claim: &Claim) -> String {
    let sender = plan.workspace.name.as_deref().unwrap_or("us");
    let body = format!(
        "<p>Stop receiving {} from {}?</p>\n\
<form method=\"post\">\n<input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">\n\
<button type=\"submit\">Unsubscribe</button>\n</form>\n\
<p>Messages you asked for, such as receipts, still reach you.</p>\n",
        escape_html(&what(plan, claim)),
        escape_html(sender),
    );
    page(plan, "Unsubscribe", &body)
}

/// The page after the unsubscribe was recorded.
pub fn confirmation_page(plan: &Plan, claim: &Claim) -> String {
    let sender = plan.workspace.name.as_deref().unwrap_or("us");
    let body = format!(
        "<p role=\"status\">Done: you will no longer receive {} from {}.</p>\n",
        escape_html(&what(plan, claim)),
        escape_html(sender),
    );
    page(plan, "You are unsubscribed", &body)
}

/// The page of a [`Forged`] token (served with 403).
pub fn refused_page(plan: &Plan) -> String {
    let body = "<p>This unsubscribe link is not valid: it may have been cut or changed \
when it was copied. Use the link in the latest message you received, or reply \
to that message to ask to be unsubscribed.</p>\n";
    page(plan, "Link not valid", body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn plan() -> Plan {
        let mut p: Plan = serde_json::from_value(serde_json::json!({
            "plan_version": 2, "workspace": {"name": "Shop <&>", "timezone": null, "from": null, "address": null},
            "schema": {"fields": [], "address_fields": {}, "timezone_field": null},
            "events": {}, "lists": {}, "segments": {}, "templates": {}, "scenarios": {},
            "cadences": {}, "pressure": null, "scenario_order": []
        }))
        .expect("a plan");
        p.topics.insert(
            "news".into(),
            crate::plan::Topic {
                label: "The <monthly> news".into(),
            },
        );
        p
    }

    #[test]
    fn base64url_round_trips_and_is_canonical() {
        for n in 0..40 {
            let bytes: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
            let t = b64_encode(&bytes);
            assert!(!t.contains('='));
            assert_eq!(b64_decode(&t), Some(bytes));
        }
        assert_eq!(b64_encode(b"hi?"), "aGk_");
        // `aGk` is "hi"; `aGl` has unused bits set: another spelling.
        assert_eq!(b64_decode("aGk"), Some(b"hi".to_vec()));
        assert_eq!(b64_decode("aGl"), None);
        assert_eq!(b64_decode("aGk="), None);
        assert_eq!(b64_decode("a"), None);
        assert_eq!(b64_decode("aG+k"), None);
    }

    #[test]
    fn tokens_say_what_they_were_made_with() {
        let s = Signer::new(b"secret of the deployment");
        let t = s.token("c42", "email", Some("news"));
        assert!(
            t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)),
            "{t}"
        );
        assert_eq!(
            s.verify(&t),
            Ok(Claim {
                contact: "c42".into(),
                channel: "email".into(),
                topic: Some("news".into())
            })
        );
        let odd = "id with\0 nul, dots. and é";
        let t = s.token(odd, "sms", None);
        let c = s.verify(&t).expect("valid");
        assert_eq!((c.contact.as_str(), c.topic), (odd, None));
        // Another secret, a swapped MAC, garbage: refused.
        assert_eq!(Signer::new(b"other").verify(&t), Err(Forged));
        let other = s.token("c43", "sms", None);
        let (p, _) = t.split_once('.').unwrap();
        let (_, m) = other.split_once('.').unwrap();
        assert_eq!(s.verify(&format!("{p}.{m}")), Err(Forged));
        for bad in ["", ".", "abc", "a.b.c", &"A".repeat(MAX_TOKEN + 1)] {
            assert_eq!(s.verify(bad), Err(Forged), "{bad}");
        }
        // Tokens are deterministic (the same link in every resend).
        assert_eq!(s.token("c42", "email", None), s.token("c42", "email", None));
        assert_ne!(s.token("c42", "email", None), s.token("c42", "push", None));
    }

    proptest! {
        #[test]
        fn any_one_byte_change_is_refused(
            contact in ".{0,40}",
            topic in proptest::option::of("[a-z_]{1,12}"),
            at in any::<prop::sample::Index>(),
            byte in any::<u8>(),
        ) {
            let s = Signer::new(b"k");
            let t = s.token(&contact, "email", topic.as_deref());
            let mut bytes = t.clone().into_bytes();
            let i = at.index(bytes.len());
            prop_assume!(bytes[i] != byte);
            bytes[i] = byte;
            let changed = String::from_utf8_lossy(&bytes).into_owned();
            prop_assert_eq!(s.verify(&changed), Err(Forged));
            // Dropping or adding a byte too.
            prop_assert_eq!(s.verify(&t[..t.len() - 1]), Err(Forged));
            prop_assert_eq!(s.verify(&format!("{t}A")), Err(Forged));
        }
    }

    #[test]
    fn pages_are_plain_escaped_and_self_contained() {
        let plan = plan();
        let claim = Claim {
            contact: "c1".into(),
            channel: "email".into(),
            topic: Some("news".into()),
        };
        let p = unsubscribe_page(&plan, &claim);
        assert!(p.contains("<form method=\"post\">"), "{p}");
        assert!(p.contains("name=\"List-Unsubscribe\" value=\"One-Click\""));
        assert!(p.contains("The &lt;monthly&gt; news"), "{p}");
        assert!(p.contains("Shop &lt;&amp;&gt;"), "{p}");
        assert!(p.contains("<html lang=\"en\">"));
        let done = confirmation_page(&plan, &claim);
        assert!(done.contains("role=\"status\""));
        let all = Claim {
            topic: None,
            channel: "sms".into(),
            ..claim
        };
        assert!(confirmation_page(&plan, &all).contains("all marketing text messages"));
        for page in [p, done, refused_page(&plan)] {
            for external in ["src=", "href=", "<script", "url(", "@import"] {
                assert!(!page.contains(external), "{external} in {page}");
            }
        }
    }
}
