//! Delivery: what `relance serve` does with a ledger line once it is
//! committed. A line names a template, a contact and an instant; delivery
//! renders the template for the contact from the plan ([`compose`]), then
//! hands the result to its channel: email over SMTP as MIME ([`email`]),
//! webhooks, tasks, SMS and push as HTTP requests ([`http`]). Recipients'
//! unsubscribe links are signed tokens ([`unsubscribe`]).
//!
//! Nothing here touches the database: the server's sender loop
//! (`crate::serve`) picks pending lines, calls these functions, and records
//! the [`Attempt`] they return. The same code renders `relance render
//! --format eml`, so that what is previewed offline is what is sent.

pub mod compose;
pub mod email;
pub mod http;
pub mod unsubscribe;

use std::collections::BTreeMap;

/// One message rendered for one contact, ready for its channel.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Composed {
    /// The template's name.
    pub template: String,
    /// One of [`crate::plan::CHANNELS`].
    pub channel: String,
    /// `marketing`, `transactional` or `operational`.
    pub kind: String,
    /// Where it goes: the value of the template's address field (an email
    /// address, a phone number, a push token); `None` for webhooks and
    /// tasks, or when the contact has no such value.
    pub to: Option<String>,
    /// `From` / `Reply-To` of an email, as the plan's senders resolve them
    /// for this contact (display name and address, RFC 5322 form).
    pub from: Option<String>,
    pub reply_to: Option<String>,
    /// Rendered parts by name (`subject`, `html`, `text`, `body`, `url`,
    /// `method`, …), as the template declares them.
    pub parts: BTreeMap<String, String>,
    /// Headers to add: for email the plan's headers (`List-Unsubscribe`,
    /// `List-Unsubscribe-Post`) with the contact's URL in; for webhooks the
    /// template's request headers.
    pub headers: BTreeMap<String, String>,
    /// The message's idempotency key (stable across restarts and
    /// processes): `Message-ID` and the webhook's `Idempotency-Key` derive
    /// from it.
    pub key: String,
    /// When the runner made the message (unix seconds): `Date` of an email.
    pub at: i64,
}

/// The outcome of one delivery attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// The receiver accepted the message; `detail`: its answer (SMTP reply,
    /// HTTP status line).
    Delivered { detail: String },
    /// A failure that may pass: timeout, refused connection, HTTP 5xx or
    /// 429, SMTP 4xx. The sender tries again later (see [`http::retry_delay`]).
    Retry { error: String },
    /// A failure that retrying will not fix: HTTP 4xx, SMTP 5xx, a contact
    /// without an address, a template that does not render.
    Failed { error: String },
}

/// HMAC-SHA256 (RFC 2104) of `data` under `key`: the signature of webhook
/// bodies and of unsubscribe tokens.
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(data);
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// Lower-case hexadecimal.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4231, test cases 2 and 6 (a key longer than the block).
    #[test]
    fn hmac_matches_rfc_4231() {
        assert_eq!(
            hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex(&hmac_sha256(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }
}
