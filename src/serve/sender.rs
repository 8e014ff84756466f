//! The sender: delivers numbered `pending` ledger lines in `seq` order,
//! one transaction per message (lock the line, render it, hand it to its
//! channel, record the outcome), and the recipients' unsubscribe links.
//!
//! The line stays locked while its receiver answers, so two processes
//! never deliver one line; a process that dies between the receiver's
//! answer and its commit delivers that one message again after its
//! restart (with the same `Message-ID` and `Idempotency-Key`): at most one
//! per sender thread per crash.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value as J;

use super::api::Answer;
use super::db::{self, error};
use super::{ClockMode, Loaded, Shared};
use crate::deliver::compose::Composer;
use crate::deliver::email::Smtp;
use crate::deliver::http::{self, Client, HttpConfig};
use crate::deliver::unsubscribe::{self, Signer};
use crate::deliver::{Attempt, Composed};
use crate::eval::{Event, Value};

/// What one sender thread keeps between messages.
struct Sender {
    composers: HashMap<String, (Arc<Loaded>, Composer)>,
    smtp: Option<Smtp>,
    http: Client,
    http_config: HttpConfig,
    signer: Signer,
}

/// A sender worker: runs until the server stops.
pub fn sender_loop(shared: &Shared) {
    let mut http_config = HttpConfig::new(shared.secret.clone());
    http_config.sms_url = shared.options.sms_url.clone();
    http_config.push_url = shared.options.push_url.clone();
    http_config.task_url = shared.options.task_url.clone();
    http_config.webhook_base = shared.options.webhook_base.clone();
    let smtp = match &shared.options.smtp {
        Some(url) => match Smtp::new(
            url,
            shared.options.smtp_user.as_deref(),
            shared.options.smtp_password.as_deref(),
        ) {
            Ok(s) => Some(s),
            Err(e) => {
                eprintln!("relance serve: sender: {e}");
                None
            }
        },
        None => None,
    };
    let mut sender = Sender {
        composers: HashMap::new(),
        smtp,
        http: Client::new(&http_config),
        http_config,
        signer: Signer::new(&shared.secret),
    };
    let mut backoff = Duration::from_millis(100);
    while !shared.stopping() {
        match sender.one(shared) {
            Ok(true) => backoff = Duration::from_millis(100),
            Ok(false) => super::nap(shared, Duration::from_millis(50)),
            Err(e) => {
                eprintln!(
                    "relance serve: sender: {e}; retrying in {} ms",
                    backoff.as_millis()
                );
                shared.pool.reset();
                super::nap(shared, backoff);
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

impl Sender {
    /// Delivers one message; `Ok(false)`: none was ready.
    fn one(&mut self, shared: &Shared) -> Result<bool, String> {
        let mut conn = shared.pool.get()?;
        let mut tx = conn.transaction().map_err(error)?;
        let wall = super::wall();
        let Some(row) = tx
            .query_opt(
                "SELECT contact, made, line, template, channel, key, attempts, at, plan, made_at
                 FROM relance.ledger
                 WHERE status = 'pending' AND seq IS NOT NULL AND next_attempt <= $1
                 ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED",
                &[&wall],
            )
            .map_err(error)?
        else {
            return Ok(false);
        };
        let contact: String = row.get(0);
        let made: i64 = row.get(1);
        let line: String = row.get(2);
        let template: String = row.get(3);
        let channel: String = row.get(4);
        let key: String = row.get(5);
        let attempts: i32 = row.get(6);
        let at: i64 = row.get(7);
        let plan_hash: String = row.get(8);
        let made_at_ms: i64 = row.get(9);
        let set = |tx: &mut postgres::Transaction,
                   status: &str,
                   err: Option<&str>,
                   next: i64,
                   tried: bool|
         -> Result<(), String> {
            tx.execute(
                "UPDATE relance.ledger SET status = $3, error = $4, next_attempt = $5,
                     attempts = attempts + $6,
                     sent_at = CASE WHEN $3 = 'sent' THEN $7 ELSE sent_at END
                 WHERE contact = $1 AND made = $2",
                &[
                    &contact,
                    &made,
                    &status,
                    &err,
                    &next,
                    &i32::from(tried),
                    &super::wall(),
                ],
            )
            .map_err(error)?;
            Ok(())
        };
        let loaded = shared.plan_by_hash(&mut tx, &plan_hash)?;
        let tpl = loaded.plan.templates.get(&template);
        // Expired while delivery was held up (SMTP or a provider down):
        // measured on the machine's clock from when the line was made, so
        // that a manual clock's jumps expire nothing.
        if let Some(exp) = tpl.and_then(|t| t.expires_seconds)
            && super::wall_ms() > made_at_ms.saturating_add(exp.saturating_mul(1000))
        {
            set(
                &mut tx,
                "failed",
                Some("expired: not delivered within the template's `expires`"),
                0,
                false,
            )?;
            tx.commit().map_err(error)?;
            return Ok(true);
        }
        // Never closer together than the ledger made them (system clock).
        if shared.clock == ClockMode::System {
            let prev = tx
                .query_opt(
                    "SELECT at, sent_at FROM relance.ledger
                     WHERE contact = $1 AND status = 'sent' ORDER BY sent_at DESC LIMIT 1",
                    &[&contact],
                )
                .map_err(error)?;
            if let Some(p) = prev {
                let (pat, psent): (i64, Option<i64>) = (p.get(0), p.get(1));
                if let Some(psent) = psent {
                    let earliest = psent.saturating_add(at.saturating_sub(pat).max(0));
                    if wall < earliest {
                        set(&mut tx, "pending", None, earliest, false)?;
                        tx.commit().map_err(error)?;
                        return Ok(true);
                    }
                }
            }
        }
        // The contact as its journey left it (its posted line until it
        // has stepped once), read once for the consent check and the message.
        let row = tx
            .query_one(
                "SELECT contact, state FROM relance.contacts WHERE id = $1",
                &[&contact],
            )
            .map_err(error)?;
        let (posted, state): (String, Option<String>) = (row.get(0), row.get(1));
        let state = state.map(|s| {
            serde_json::from_str::<crate::run::ContactState>(&s)
                .map_err(|e| format!("contact `{contact}`: the stored state does not load: {e}"))
        });
        let topic = tpl.and_then(|t| t.topic.as_deref());
        // A marketing message made before its contact unsubscribed (and
        // held up since) is not delivered.
        if tpl.is_some_and(|t| t.kind == "marketing")
            && unsubscribed(
                &mut tx,
                state.as_ref().and_then(|s| s.as_ref().ok()),
                &contact,
                &channel,
                topic,
            )?
        {
            set(
                &mut tx,
                "failed",
                Some("unsubscribed: the contact unsubscribed before delivery"),
                0,
                false,
            )?;
            db::count(&mut tx, "suppressed_unsubscribed", 1)?;
            tx.commit().map_err(error)?;
            return Ok(true);
        }
        let recipient = match state {
            Some(state) => state.map(|s| s.contact().clone()),
            None => serde_json::from_str(&posted)
                .map_err(|e| format!("contact `{contact}`: the stored contact does not load: {e}")),
        };
        let composed = recipient.and_then(|c| {
            self.compose(
                shared, &loaded, &contact, &c, &line, &template, &channel, topic, at, &key,
            )
        });
        let attempt = match composed {
            Err(e) => Attempt::Failed { error: e },
            Ok(c) => self.deliver(&c),
        };
        match attempt {
            Attempt::Delivered { .. } => set(&mut tx, "sent", None, 0, true)?,
            Attempt::Failed { error: e } => set(&mut tx, "failed", Some(&e), 0, true)?,
            Attempt::Retry { error: e } => match http::retry_delay(attempts as u32 + 1) {
                Some(d) => {
                    // `--retry-first` scales the schedule (30 s first).
                    let d = d.mul_f64(shared.options.retry_first.as_secs_f64() / 30.0);
                    let next = wall + (d.as_millis() as i64 + 999) / 1000;
                    set(&mut tx, "pending", Some(&e), next, true)?
                }
                None => set(
                    &mut tx,
                    "failed",
                    Some(&format!("{e} (last attempt)")),
                    0,
                    true,
                )?,
            },
        }
        tx.commit().map_err(error)?;
        Ok(true)
    }

    /// The message of `template` for `recipient` (contact `id`), with
    /// its signed unsubscribe link.
    #[allow(clippy::too_many_arguments)]
    fn compose(
        &mut self,
        shared: &Shared,
        loaded: &Arc<Loaded>,
        id: &str,
        recipient: &crate::eval::Contact,
        line: &str,
        template: &str,
        channel: &str,
        topic: Option<&str>,
        at: i64,
        key: &str,
    ) -> Result<Composed, String> {
        let composer = &self
            .composers
            .entry(loaded.hash.clone())
            .or_insert_with(|| (Arc::clone(loaded), Composer::new(&loaded.plan)))
            .1;
        let line: J = serde_json::from_str(line).map_err(|e| e.to_string())?;
        let locale = line.get("locale").and_then(J::as_str);
        let url = format!(
            "{}/u/{}",
            shared.public_url,
            self.signer.token(id, channel, topic)
        );
        composer.compose(
            template,
            &super::contact_line(recipient),
            at,
            locale,
            &url,
            key,
        )
    }

    fn deliver(&self, c: &Composed) -> Attempt {
        match c.channel.as_str() {
            "email" => match &self.smtp {
                Some(s) => s.send(c),
                None => Attempt::Failed {
                    error: "no SMTP server: start relance serve with --smtp URL".into(),
                },
            },
            _ => match http::request(c, &self.http_config) {
                Ok(req) => http::send(&self.http, &req),
                Err(e) => Attempt::Failed { error: e },
            },
        }
    }
}

/// Whether `contact` unsubscribed from `channel` (or from `topic` on it):
/// in its `state`, or by an `unsubscribed` event not yet stepped.
fn unsubscribed(
    tx: &mut postgres::Transaction,
    state: Option<&crate::run::ContactState>,
    contact: &str,
    channel: &str,
    topic: Option<&str>,
) -> Result<bool, String> {
    let Some(ch) = crate::plan::CHANNELS.iter().position(|c| *c == channel) else {
        return Ok(false);
    };
    if state.is_some_and(|s| s.unsubscribed_from(ch, topic)) {
        return Ok(true);
    }
    let pending = tx
        .query(
            "SELECT event FROM relance.inbox WHERE contact = $1 AND event LIKE '%\"unsubscribed\"%'",
            &[&contact],
        )
        .map_err(error)?;
    Ok(pending.iter().any(|r| {
        let text: String = r.get(0);
        serde_json::from_str::<Event>(&text).is_ok_and(|e| {
            let field = |k: &str| match e.fields.get(k) {
                Some(Value::Text(v)) => Some(v.as_str()),
                _ => None,
            };
            e.name == "unsubscribed"
                && field("channel") == Some(channel)
                && (field("topic").is_none() || field("topic") == topic)
        })
    }))
}

/// A recipient's unsubscribe link: `GET` shows the page, `POST` (the
/// page's button, or RFC 8058's one-click) records an `unsubscribed`
/// event at the runner's clock. A forged or altered token gets 403.
pub fn unsubscribe(shared: &Shared, post: bool, token: &str) -> Result<Answer, String> {
    let loaded = shared.loaded();
    let html = "text/html; charset=utf-8";
    let claim = match Signer::new(&shared.secret).verify(token) {
        Ok(c) => c,
        Err(_) => {
            return Ok(Answer::text(
                403,
                html,
                unsubscribe::refused_page(&loaded.plan),
            ));
        }
    };
    if !post {
        return Ok(Answer::text(
            200,
            html,
            unsubscribe::unsubscribe_page(&loaded.plan, &claim),
        ));
    }
    let mut conn = shared.pool.get()?;
    let mut tx = conn.transaction().map_err(error)?;
    let clock = shared.now(&mut tx)?;
    let known: bool = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM relance.contacts WHERE id = $1)",
            &[&claim.contact],
        )
        .map_err(error)?
        .get(0);
    if known {
        let mut fields = std::collections::BTreeMap::new();
        fields.insert("channel".to_string(), Value::Text(claim.channel.clone()));
        if let Some(t) = &claim.topic {
            fields.insert("topic".to_string(), Value::Text(t.clone()));
        }
        let event = Event {
            name: "unsubscribed".into(),
            at: clock,
            fields,
            run: None,
        };
        super::ingest::store_events(&mut tx, &[(claim.contact.clone(), event)])?;
        db::count(&mut tx, "unsubscribes", 1)?;
    }
    tx.commit().map_err(error)?;
    Ok(Answer::text(
        200,
        html,
        unsubscribe::confirmation_page(&loaded.plan, &claim),
    ))
}
