//! The HTTP API (JSON; `docs/serve.md` documents every call with curl):
//! `/v1/*` needs `Authorization: Bearer TOKEN`; `/healthz`, `/metrics`
//! and the recipients' `/u/TOKEN` links do not.

use std::io::Read;

use serde_json::{Value as J, json};
use tiny_http::{Header, Method, Request, Response};

use super::db::{self, error};
use super::{ClockMode, Shared, engine, ingest};
use crate::run::clock::rfc3339;
use crate::run::input::parse_timestamp;

/// An answer: status, content type, body.
pub struct Answer {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    pub headers: Vec<(&'static str, String)>,
}

impl Answer {
    pub fn json(status: u16, v: &J) -> Answer {
        let mut body = serde_json::to_vec_pretty(v).unwrap_or_default();
        body.push(b'\n');
        Answer {
            status,
            content_type: "application/json",
            body,
            headers: Vec::new(),
        }
    }

    /// `{"error": message}`.
    pub fn error(status: u16, message: impl Into<String>) -> Answer {
        Answer::json(status, &json!({"error": message.into()}))
    }

    pub fn text(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Answer {
        Answer {
            status,
            content_type,
            body: body.into(),
            headers: Vec::new(),
        }
    }
}

/// Serves requests until the server stops.
pub fn http_loop(shared: &Shared, server: &tiny_http::Server) {
    while !shared.stopping() {
        let req = match server.recv_timeout(std::time::Duration::from_millis(200)) {
            Ok(Some(r)) => r,
            Ok(None) => continue,
            Err(_) => break,
        };
        shared
            .metrics
            .requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        respond(shared, req);
    }
}

fn respond(shared: &Shared, mut req: Request) {
    let answer = handle(shared, &mut req);
    // A Content-Length rather than chunks, whatever the size.
    let mut resp = Response::from_data(answer.body)
        .with_status_code(answer.status)
        .with_chunked_threshold(usize::MAX);
    if let Ok(h) = Header::from_bytes(&b"Content-Type"[..], answer.content_type.as_bytes()) {
        resp.add_header(h);
    }
    for (k, v) in answer.headers {
        if let Ok(h) = Header::from_bytes(k.as_bytes(), v.as_bytes()) {
            resp.add_header(h);
        }
    }
    let _ = req.respond(resp);
}

fn header<'a>(req: &'a Request, name: &'static str) -> Option<&'a str> {
    req.headers()
        .iter()
        .find(|h| h.field.equiv(name))
        .map(|h| h.value.as_str())
}

/// Compares in time independent of where the two differ.
pub fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// Reads the body up to the limit; `Err` is the answer (413, 400).
fn body(shared: &Shared, req: &mut Request) -> Result<String, Answer> {
    let limit = shared.max_body;
    if req.body_length().is_some_and(|n| n > limit) {
        return Err(Answer::error(
            413,
            format!("the body is over the limit of {limit} bytes: split it into several requests"),
        ));
    }
    let mut buf = Vec::new();
    let read = req.as_reader().take(limit as u64 + 1).read_to_end(&mut buf);
    if let Err(e) = read {
        return Err(Answer::error(400, format!("cannot read the body: {e}")));
    }
    if buf.len() > limit {
        return Err(Answer::error(
            413,
            format!("the body is over the limit of {limit} bytes: split it into several requests"),
        ));
    }
    String::from_utf8(buf).map_err(|e| {
        Answer::error(
            400,
            format!(
                "the body is not UTF-8 (byte {}): send JSONL in UTF-8",
                e.utf8_error().valid_up_to()
            ),
        )
    })
}

/// The query string's parameters.
fn query(url: &str) -> Vec<(String, String)> {
    url.split_once('?')
        .map(|(_, q)| {
            q.split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (percent_decode(k), percent_decode(v))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `%XX` and `+` decoded (invalid sequences kept as they are).
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let hex = |c: u8| (c as char).to_digit(16);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn handle(shared: &Shared, req: &mut Request) -> Answer {
    let url = req.url().to_string();
    let path = url.split('?').next().unwrap_or("").to_string();
    let method = req.method().clone();
    match (&method, path.as_str()) {
        (Method::Get, "/healthz") => return health(shared),
        (Method::Get, "/metrics") => return metrics(shared),
        _ => {}
    }
    if let Some(token) = path.strip_prefix("/u/") {
        return unsubscribe(shared, req, &method, token);
    }
    if !path.starts_with("/v1/") {
        return Answer::error(404, format!("no such resource: {path}"));
    }
    if let Some(expected) = &shared.token {
        let given = header(req, "Authorization")
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim);
        if !given.is_some_and(|g| same_secret(g.as_bytes(), expected.as_bytes())) {
            let mut a = Answer::error(
                401,
                "missing or wrong bearer token: send `Authorization: Bearer TOKEN`",
            );
            a.headers.push(("WWW-Authenticate", "Bearer".into()));
            return a;
        }
    }
    let result = match (&method, path.as_str()) {
        (Method::Post, "/v1/contacts") => match body(shared, req) {
            Ok(b) => ingest::contacts(shared, &b).map(|v| Answer::json(200, &v)),
            Err(a) => return a,
        },
        (Method::Post, "/v1/events") => match body(shared, req) {
            Ok(b) => ingest::events(shared, &b).map(|v| Answer::json(200, &v)),
            Err(a) => return a,
        },
        (Method::Post, "/v1/clock") => match body(shared, req) {
            Ok(b) => clock(shared, &b),
            Err(a) => return a,
        },
        (Method::Get, "/v1/clock") => current_clock(shared),
        (Method::Get, "/v1/outbox") => outbox(shared, &url),
        (Method::Post, "/v1/plan") => match body(shared, req) {
            Ok(b) => super::upgrade::post_plan(shared, &b),
            Err(a) => return a,
        },
        (Method::Get, p) if p.starts_with("/v1/contacts/") => {
            contact(shared, &percent_decode(&p["/v1/contacts/".len()..]))
        }
        (_, "/v1/contacts" | "/v1/events" | "/v1/clock" | "/v1/outbox" | "/v1/plan") => {
            return Answer::error(405, format!("{method} is not allowed on {path}"));
        }
        _ => return Answer::error(404, format!("no such resource: {path}")),
    };
    result.unwrap_or_else(|e| {
        eprintln!("relance serve: {method} {path}: {e}");
        Answer::error(503, e)
    })
}

fn health(shared: &Shared) -> Answer {
    let state = shared.pool.get().and_then(|mut c| shared.now(&mut *c));
    match state {
        Ok(now) => Answer::json(
            200,
            &json!({"status": "ok", "clock": rfc3339(now), "plan": shared.loaded().hash}),
        ),
        Err(e) => Answer::json(503, &json!({"status": "unavailable", "error": e})),
    }
}

fn current_clock(shared: &Shared) -> Result<Answer, String> {
    let mut c = shared.pool.get()?;
    let now = shared.now(&mut *c)?;
    Ok(Answer::json(200, &json!({"now": rfc3339(now)})))
}

/// `POST /v1/clock {"now": TS}`: moves the manual clock, then steps
/// everything due before it (with every other process) and numbers the
/// ledger, then answers.
fn clock(shared: &Shared, body: &str) -> Result<Answer, String> {
    if shared.clock != ClockMode::Manual {
        return Ok(Answer::error(
            409,
            "this runner uses the system clock: start it with `--clock manual` to move time by hand",
        ));
    }
    let now = match serde_json::from_str::<J>(body) {
        Ok(v) => match v.get("now").and_then(J::as_str).and_then(parse_timestamp) {
            Some(t) => t,
            None => {
                return Ok(Answer::error(
                    400,
                    "the body must be {\"now\": TS} with an RFC 3339 timestamp such as 2026-01-15T09:00:00Z",
                ));
            }
        },
        Err(e) => return Ok(Answer::error(400, format!("the body is not JSON: {e}"))),
    };
    {
        let mut c = shared.pool.get()?;
        let mut tx = c.transaction().map_err(error)?;
        let current: i64 = tx
            .query_one(
                "SELECT value::bigint FROM relance.meta WHERE key = 'clock' FOR UPDATE",
                &[],
            )
            .map_err(error)?
            .get(0);
        if now < current {
            return Ok(Answer::error(
                409,
                format!(
                    "the clock only moves forward: it is at {} and {} is earlier",
                    rfc3339(current),
                    rfc3339(now)
                ),
            ));
        }
        db::set_meta(&mut tx, "clock", &now.to_string())?;
        tx.commit().map_err(error)?;
    }
    let mut total = engine::Pass::default();
    loop {
        if shared.stopping() {
            return Ok(Answer::error(
                503,
                "the server is stopping: post the clock again after its restart",
            ));
        }
        let pass = engine::step_due(shared, now)?;
        total.contacts += pass.contacts;
        total.events += pass.events;
        total.messages += pass.messages;
        if pass.contacts == 0 {
            let mut c = shared.pool.get()?;
            if !engine::any_due(&mut *c, now)? {
                break;
            }
            // Another process holds the rest: wait for it.
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
    let mut c = shared.pool.get()?;
    engine::sequence(&mut *c, now)?;
    Ok(Answer::json(
        200,
        &json!({
            "now": rfc3339(now),
            "contacts_stepped": total.contacts,
            "events_applied": total.events,
            "messages": total.messages,
        }),
    ))
}

/// `GET /v1/outbox?after=SEQ&limit=N`: numbered ledger lines as JSONL.
fn outbox(shared: &Shared, url: &str) -> Result<Answer, String> {
    let mut after = 0i64;
    let mut limit = 1000i64;
    for (k, v) in query(url) {
        let n: Option<i64> = v.parse().ok();
        match (k.as_str(), n) {
            ("after", Some(n)) if n >= 0 => after = n,
            ("limit", Some(n)) if (1..=100_000).contains(&n) => limit = n,
            ("after" | "limit", _) => {
                return Ok(Answer::error(
                    400,
                    format!(
                        "`{k}={v}`: `after` is a sequence number (0 or more), `limit` 1 to 100000"
                    ),
                ));
            }
            _ => {}
        }
    }
    let mut c = shared.pool.get()?;
    let rows = c
        .query(
            "SELECT seq, line, status, error, key, plan, attempts, channel FROM relance.ledger
             WHERE seq > $1 ORDER BY seq LIMIT $2",
            &[&after, &limit],
        )
        .map_err(error)?;
    let loaded = shared.loaded();
    let mut out = String::new();
    for r in rows {
        let line: String = r.get(1);
        let seq: i64 = r.get(0);
        let status: String = r.get(2);
        let err: Option<String> = r.get(3);
        let key: String = r.get(4);
        let plan: String = r.get(5);
        let attempts: i32 = r.get(6);
        let channel: String = r.get(7);
        let id = message_id(&loaded.plan, &channel, &line, &key);
        out.push_str(line.strip_suffix('}').unwrap_or(&line));
        out.push_str(&format!(
            ",\"seq\":{seq},\"status\":\"{status}\",\"message_id\":{},\"plan\":\"{plan}\",\"attempts\":{attempts}",
            J::String(id)
        ));
        if let Some(e) = err {
            out.push_str(&format!(",\"error\":{}", J::String(e)));
        }
        out.push_str("}\n");
    }
    Ok(Answer::text(200, "application/jsonl", out))
}

/// The ledger's `message_id` of a line: an email's `Message-ID` (its
/// sender is the line's `from`, else the workspace's), or for the other
/// channels the `Idempotency-Key` their requests carry.
fn message_id(plan: &crate::plan::Plan, channel: &str, line: &str, key: &str) -> String {
    if channel != "email" {
        return key.to_string();
    }
    let from = serde_json::from_str::<J>(line)
        .ok()
        .and_then(|l| l.get("from").and_then(J::as_str).map(str::to_string))
        .or_else(|| plan.workspace.from.clone());
    from.and_then(|f| crate::deliver::email::message_id_from(key, &f))
        .unwrap_or_else(|| crate::deliver::email::message_id(key, "relance.invalid"))
}

/// `GET /v1/contacts/ID`.
fn contact(shared: &Shared, id: &str) -> Result<Answer, String> {
    let mut c = shared.pool.get()?;
    let Some(row) = c
        .query_opt(
            "SELECT contact, state, joined, due, waiting, ended FROM relance.contacts WHERE id = $1",
            &[&id],
        )
        .map_err(error)?
    else {
        return Ok(Answer::error(404, format!("no contact `{id}`")));
    };
    let posted: String = row.get(0);
    let state: Option<String> = row.get(1);
    let joined: i64 = row.get(2);
    let due: Option<i64> = row.get(3);
    let waiting: Vec<String> = row.get(4);
    let ended: Vec<String> = row.get(5);
    let contact: crate::eval::Contact = match &state {
        Some(s) => serde_json::from_str::<crate::run::ContactState>(s)
            .map(|s| s.contact().clone())
            .map_err(|e| format!("contact `{id}`: the stored state does not load: {e}"))?,
        None => serde_json::from_str(&posted)
            .map_err(|e| format!("contact `{id}`: the stored contact does not load: {e}"))?,
    };
    let runs: Vec<J> = waiting
        .iter()
        .map(|w| {
            let (s, st) = w.split_once('/').unwrap_or((w, ""));
            json!({"scenario": s, "waits_at": st})
        })
        .collect();
    let ended: Vec<J> = ended
        .iter()
        .map(|w| {
            let (s, st) = w.split_once('/').unwrap_or((w, ""));
            json!({"scenario": s, "step": st, "reason": "plan_changed"})
        })
        .collect();
    let pending: Vec<J> = c
        .query(
            "SELECT line, seq, attempts, error FROM relance.ledger
             WHERE contact = $1 AND status = 'pending' ORDER BY at, made",
            &[&id],
        )
        .map_err(error)?
        .into_iter()
        .map(|r| {
            let line: String = r.get(0);
            let mut v: J = serde_json::from_str(&line).unwrap_or(J::Null);
            v["seq"] = json!(r.get::<_, Option<i64>>(1));
            v["attempts"] = json!(r.get::<_, i32>(2));
            if let Some(e) = r.get::<_, Option<String>>(3) {
                v["error"] = J::String(e);
            }
            v
        })
        .collect();
    Ok(Answer::json(
        200,
        &json!({
            "id": id,
            "fields": super::contact_json(&contact),
            "lists": contact.lists,
            "tags": contact.tags,
            "joined": rfc3339(joined),
            "started": state.is_some(),
            "next_wake": due.map(rfc3339),
            "runs": runs,
            "ended_by_plan_change": ended,
            "pending": pending,
        }),
    ))
}

/// `/metrics` in Prometheus' text format.
fn metrics(shared: &Shared) -> Answer {
    match metrics_text(shared) {
        Ok(t) => Answer::text(200, "text/plain; version=0.0.4", t),
        Err(e) => Answer::text(503, "text/plain", format!("# error: {e}\n")),
    }
}

fn metrics_text(shared: &Shared) -> Result<String, String> {
    use std::fmt::Write as _;
    let mut c = shared.pool.get()?;
    let mut out = String::new();
    let counters = c
        .query(
            "SELECT name, value FROM relance.counters ORDER BY name",
            &[],
        )
        .map_err(error)?;
    let get = |n: &str| -> i64 {
        counters
            .iter()
            .find(|r| r.get::<_, String>(0) == n)
            .map_or(0, |r| r.get(1))
    };
    for (name, key, help) in [
        (
            "relance_events_ingested_total",
            "events_received",
            "Events accepted by POST /v1/events.",
        ),
        (
            "relance_events_duplicate_total",
            "events_duplicate",
            "Events ignored because their id was already received.",
        ),
        (
            "relance_contacts_received_total",
            "contacts_received",
            "Contact lines accepted by POST /v1/contacts.",
        ),
        (
            "relance_events_applied_total",
            "events_applied",
            "Events applied to journeys.",
        ),
        (
            "relance_messages_made_total",
            "messages_made",
            "Ledger lines made.",
        ),
        (
            "relance_runs_ended_plan_changed_total",
            "runs_ended_plan_changed",
            "Runs ended because a plan upgrade removed their step.",
        ),
        (
            "relance_plan_upgrades_total",
            "plan_upgrades",
            "Plans installed over another.",
        ),
        (
            "relance_unsubscribes_total",
            "unsubscribes",
            "Unsubscribes received through /u/ links.",
        ),
    ] {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
            get(key)
        );
    }
    let _ = writeln!(
        out,
        "# HELP relance_sends_total Ledger lines by channel and status.\n# TYPE relance_sends_total gauge"
    );
    for r in c
        .query(
            "SELECT channel, status, count(*) FROM relance.ledger GROUP BY 1, 2 ORDER BY 1, 2",
            &[],
        )
        .map_err(error)?
    {
        let _ = writeln!(
            out,
            "relance_sends_total{{channel=\"{}\",status=\"{}\"}} {}",
            r.get::<_, String>(0),
            r.get::<_, String>(1),
            r.get::<_, i64>(2)
        );
    }
    let now = shared.now(&mut *c)?;
    let row = c
        .query_one(
            "SELECT count(*), count(*) FILTER (WHERE due < $1) FROM relance.contacts WHERE due IS NOT NULL",
            &[&now],
        )
        .map_err(error)?;
    let _ = writeln!(
        out,
        "# HELP relance_timers_pending Contacts with a wake-up or event ahead.\n# TYPE relance_timers_pending gauge\nrelance_timers_pending {}",
        row.get::<_, i64>(0)
    );
    let _ = writeln!(
        out,
        "# HELP relance_timers_due Contacts due now, not yet stepped.\n# TYPE relance_timers_due gauge\nrelance_timers_due {}",
        row.get::<_, i64>(1)
    );
    let oldest: Option<i64> = c
        .query_one(
            "SELECT min(at) FROM relance.ledger WHERE status = 'pending' AND seq IS NOT NULL",
            &[],
        )
        .map_err(error)?
        .get(0);
    let _ = writeln!(
        out,
        "# HELP relance_delivery_lag_seconds Age of the oldest message waiting for delivery (runner's clock).\n# TYPE relance_delivery_lag_seconds gauge\nrelance_delivery_lag_seconds {}",
        oldest.map_or(0, |a| (now - a).max(0))
    );
    let _ = writeln!(
        out,
        "# HELP relance_http_requests_total Requests served by this process.\n# TYPE relance_http_requests_total counter\nrelance_http_requests_total {}",
        shared
            .metrics
            .requests
            .load(std::sync::atomic::Ordering::Relaxed)
    );
    Ok(out)
}

/// `GET /u/TOKEN` (the page) and `POST /u/TOKEN` (RFC 8058 one-click, or
/// the page's button).
fn unsubscribe(shared: &Shared, req: &mut Request, method: &Method, token: &str) -> Answer {
    match super::sender::unsubscribe(shared, method == &Method::Post, &percent_decode(token)) {
        Ok(a) => a,
        Err(e) => {
            let _ = req;
            eprintln!("relance serve: unsubscribe: {e}");
            Answer::text(
                503,
                "text/plain; charset=utf-8",
                "Please try again in a minute.\n",
            )
        }
    }
}
