//! Webhooks, tasks, SMS and push as HTTP requests (docs/delivery.md,
//! "Webhooks, tasks, SMS and push").
//!
//! Three steps, each a function the server's sender loop calls:
//!
//! 1. [`request`] turns a [`Composed`] message into a [`Request`]: a
//!    webhook goes to its rendered URL with its method, headers and body; a
//!    task, an SMS or a push goes as a JSON object to the provider endpoint
//!    of its channel ([`HttpConfig::task_url`], [`HttpConfig::sms_url`],
//!    [`HttpConfig::push_url`]). Every request is signed
//!    (`X-Relance-Signature: t=UNIX,v1=HEX`, see [`signature`]) and carries
//!    the message's `Idempotency-Key`. An `Err` means the message can never
//!    go out as it is (no provider URL, a URL that is not https, a header
//!    that HTTP cannot carry): the sender marks the line `failed`.
//! 2. [`send`] makes the request with [`Client`] (ureq, TLS by rustls with
//!    the Mozilla roots of `webpki-roots`, no redirects followed) and
//!    classifies the answer as an [`Attempt`].
//! 3. [`retry_delay`] says when to try a [`Attempt::Retry`] again, or that
//!    the line is now `failed`.
//!
//! The signature's timestamp is the wall clock when [`request`] is called
//! (never the runner's manual clock: receivers compare it with theirs), so
//! the sender builds the request again for each attempt.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value as J};

use super::{Attempt, Composed, hex, hmac_sha256};
use crate::run::clock::rfc3339;

/// The header that carries the signature.
pub const SIGNATURE_HEADER: &str = "X-Relance-Signature";
/// The header that carries [`Composed::key`].
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";
/// How many attempts a message gets before its line becomes `failed`
/// (see [`retry_delay`]).
pub const MAX_ATTEMPTS: u32 = 12;
/// The first wait after a failed attempt; each further wait doubles it.
const FIRST_DELAY: Duration = Duration::from_secs(30);
/// The longest wait between two attempts.
const MAX_DELAY: Duration = Duration::from_secs(3600);
/// How much of an error answer's body goes into the error text.
const BODY_EXCERPT: usize = 200;

/// What delivery over HTTP needs from the deployment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpConfig {
    /// The key of the HMAC-SHA256 signature of every request.
    pub secret: Vec<u8>,
    /// Where SMS go (`relance serve --sms-url`); `None`: SMS fail.
    pub sms_url: Option<String>,
    /// Where push notifications go (`--push-url`); `None`: push fail.
    pub push_url: Option<String>,
    /// Where tasks go (`--task-url`); `None`: tasks fail. A task template
    /// has no URL of its own (only `body`, `assignee` and `due`).
    pub task_url: Option<String>,
    /// For staging and tests: send every webhook to this origin
    /// (`http://127.0.0.1:9000`, optionally with a path prefix) instead of
    /// the rendered URL's scheme, host and port; the rendered path and
    /// query are kept.
    pub webhook_base: Option<String>,
    /// The whole exchange, from DNS to the answer's status line; past it
    /// the attempt is a [`Attempt::Retry`].
    pub timeout: Duration,
    /// The `User-Agent` of requests that do not set their own.
    pub user_agent: String,
}

impl HttpConfig {
    /// Defaults: no provider URLs, a 10 s timeout, `relance/VERSION`.
    pub fn new(secret: impl Into<Vec<u8>>) -> HttpConfig {
        HttpConfig {
            secret: secret.into(),
            sms_url: None,
            push_url: None,
            task_url: None,
            webhook_base: None,
            timeout: Duration::from_secs(10),
            user_agent: format!("relance/{}", env!("CARGO_PKG_VERSION")),
        }
    }
}

/// One HTTP request, ready to send (and to show: nothing in it is secret
/// except the values of a webhook's `env("NAME")` headers).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// `POST`, `PUT` or `PATCH`.
    pub method: String,
    /// An absolute `https://` URL, or `http://` to a loopback host.
    pub url: String,
    /// In the order they are sent; names as written.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Request {
    /// The value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The HTTP request that delivers `c`, signed now.
pub fn request(c: &Composed, cfg: &HttpConfig) -> Result<Request, String> {
    request_at(c, cfg, unix_now())
}

/// [`request`] signed as of `now` (unix seconds).
pub fn request_at(c: &Composed, cfg: &HttpConfig, now: i64) -> Result<Request, String> {
    let what = || format!("{} `{}`", c.channel, c.template);
    let (method, url, mut headers, body) = match c.channel.as_str() {
        "webhook" => webhook(c, cfg).map_err(|e| format!("{}: {e}", what()))?,
        "task" | "sms" | "push" => {
            let (endpoint, flag) = match c.channel.as_str() {
                "task" => (&cfg.task_url, "--task-url"),
                "sms" => (&cfg.sms_url, "--sms-url"),
                _ => (&cfg.push_url, "--push-url"),
            };
            let Some(endpoint) = endpoint else {
                return Err(format!(
                    "{}: no {} endpoint is configured (start relance serve with {flag} URL)",
                    what(),
                    c.channel
                ));
            };
            check_url(endpoint, true).map_err(|e| format!("{flag} {e}"))?;
            let body = provider_body(c).map_err(|e| format!("{}: {e}", what()))?;
            (
                "POST".to_string(),
                endpoint.clone(),
                vec![("Content-Type".to_string(), "application/json".to_string())],
                body,
            )
        }
        other => {
            return Err(format!(
                "template `{}`: channel `{other}` is not delivered over HTTP",
                c.template
            ));
        }
    };
    if !headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("user-agent"))
    {
        headers.push(("User-Agent".to_string(), cfg.user_agent.clone()));
    }
    check_value(IDEMPOTENCY_HEADER, &c.key).map_err(|e| format!("{}: {e}", what()))?;
    headers.push((IDEMPOTENCY_HEADER.to_string(), c.key.clone()));
    headers.push((
        SIGNATURE_HEADER.to_string(),
        signature(&cfg.secret, now, body.as_bytes()),
    ));
    Ok(Request {
        method,
        url,
        headers,
        body,
    })
}

/// The value of [`SIGNATURE_HEADER`] for `body` sent at `t` (unix seconds):
/// `t=T,v1=HEX`, HEX being the lower-case hexadecimal HMAC-SHA256, under
/// `secret`, of the bytes of `T` in decimal, a `.`, and the body's bytes.
pub fn signature(secret: &[u8], t: i64, body: &[u8]) -> String {
    let mut signed = format!("{t}.").into_bytes();
    signed.extend_from_slice(body);
    format!("t={t},v1={}", hex(&hmac_sha256(secret, &signed)))
}

/// What a receiver does with [`SIGNATURE_HEADER`]: `Ok` when `header`
/// signs `body` under `secret` and its timestamp is within `tolerance`
/// seconds of `now`. A reference for docs/delivery.md; the comparison of
/// the codes takes the same time wherever they differ.
pub fn verify_signature(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now: i64,
    tolerance: i64,
) -> Result<(), String> {
    let mut t = None;
    let mut codes = Vec::new();
    for item in header.split(',') {
        match item.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => codes.push(v),
            _ => {}
        }
    }
    let t = t.ok_or("no `t=` timestamp")?;
    if (now - t).abs() > tolerance {
        return Err(format!(
            "timestamp {t} is {}s away from now",
            (now - t).abs()
        ));
    }
    let expected = signature(secret, t, body);
    let expected = &expected[expected.len() - 64..];
    let same = |v: &str| {
        v.len() == expected.len()
            && v.bytes()
                .zip(expected.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    };
    if codes.into_iter().any(same) {
        Ok(())
    } else {
        Err("no `v1=` code matches the body".to_string())
    }
}

/// Method, URL, headers and body of a request.
type Parts = (String, String, Vec<(String, String)>, String);

/// Method, URL, headers and body of a webhook.
fn webhook(c: &Composed, cfg: &HttpConfig) -> Result<Parts, String> {
    let method = match c.parts.get("method").map(|m| m.trim().to_ascii_uppercase()) {
        None => "POST".to_string(),
        Some(m) if ["POST", "PUT", "PATCH"].contains(&m.as_str()) => m,
        Some(m) => return Err(format!("method `{m}` is not POST, PUT or PATCH")),
    };
    let rendered = c
        .parts
        .get("url")
        .ok_or("no `url` part (the plan's template has no URL)")?
        .trim();
    let url = match &cfg.webhook_base {
        Some(base) => rebase(rendered, base)?,
        None => {
            check_url(rendered, false)?;
            rendered.to_string()
        }
    };
    let mut headers = Vec::new();
    for (name, value) in &c.headers {
        let lower = name.to_ascii_lowercase();
        if ["host", "content-length", "transfer-encoding", "connection"].contains(&lower.as_str()) {
            return Err(format!(
                "header `{name}` is set by the HTTP client, a template may not set it"
            ));
        }
        if lower == IDEMPOTENCY_HEADER.to_ascii_lowercase()
            || lower == SIGNATURE_HEADER.to_ascii_lowercase()
        {
            // relance's own value replaces it (docs/delivery.md).
            continue;
        }
        check_name(name)?;
        check_value(name, value)?;
        headers.push((name.clone(), value.clone()));
    }
    if !headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
    {
        headers.insert(
            0,
            ("Content-Type".to_string(), "application/json".to_string()),
        );
    }
    let body = c.parts.get("body").cloned().unwrap_or_default();
    Ok((method, url, headers, body))
}

/// The JSON object a task, SMS or push provider receives.
fn provider_body(c: &Composed) -> Result<String, String> {
    let mut m = Map::new();
    let s = |v: &str| J::String(v.to_string());
    m.insert("channel".into(), s(&c.channel));
    m.insert("template".into(), s(&c.template));
    m.insert("kind".into(), s(&c.kind));
    m.insert("key".into(), s(&c.key));
    m.insert("at".into(), s(&rfc3339(c.at)));
    let part = |name: &str| c.parts.get(name).map(|v| s(v));
    match c.channel.as_str() {
        "task" => {
            if let Some(to) = &c.to {
                m.insert("to".into(), s(to));
            }
            m.insert("body".into(), part("body").unwrap_or_else(|| s("")));
            for optional in ["assignee", "due"] {
                if let Some(v) = part(optional) {
                    m.insert(optional.into(), v);
                }
            }
        }
        channel => {
            let to =
                c.to.as_deref()
                    .filter(|t| !t.trim().is_empty())
                    .ok_or("the contact has no address for this channel")?;
            m.insert("to".into(), s(to));
            if channel == "sms" {
                m.insert("text".into(), part("body").unwrap_or_else(|| s("")));
            } else {
                m.insert("title".into(), part("title").unwrap_or_else(|| s("")));
                m.insert("body".into(), part("body").unwrap_or_else(|| s("")));
            }
        }
    }
    Ok(J::Object(m).to_string())
}

/// `Err` unless `url` is an absolute `https://` URL with a host, or an
/// `http://` one to a loopback host (tests, a local relay); any `http://`
/// host when `any_http` (a provider URL the operator chose).
fn check_url(url: &str, any_http: bool) -> Result<(), String> {
    let bad = |why: &str| Err(format!("`{}` {why}", clip(url, 200)));
    let uri: ureq::http::Uri = match url.parse() {
        Ok(u) => u,
        Err(_) => return bad("is not a valid URL"),
    };
    let Some(host) = uri.host().filter(|h| !h.is_empty()) else {
        return bad("has no host");
    };
    match uri.scheme_str() {
        Some("https") => Ok(()),
        Some("http") if any_http || is_loopback(host) => Ok(()),
        Some("http") => bad("is not https (plain http only goes to a loopback host)"),
        _ => bad("is not an https URL"),
    }
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `rendered` with its scheme, host and port replaced by `base`'s.
fn rebase(rendered: &str, base: &str) -> Result<String, String> {
    check_url(base, true).map_err(|e| format!("webhook base {e}"))?;
    let uri: ureq::http::Uri = rendered
        .parse()
        .map_err(|_| format!("`{}` is not a valid URL", clip(rendered, 200)))?;
    let tail = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    Ok(format!("{}{tail}", base.trim_end_matches('/')))
}

fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!("`{}` is not an HTTP header name", clip(name, 100)))
    }
}

fn check_value(name: &str, value: &str) -> Result<(), String> {
    if value.chars().any(|c| c.is_control() && c != '\t') {
        Err(format!(
            "the value of header `{name}` holds a line break or a control character"
        ))
    } else {
        Ok(())
    }
}

/// The HTTP client of delivery: one per process, shared by every sender
/// thread (cloning it is cheap and shares its connection pool).
#[derive(Clone, Debug)]
pub struct Client {
    agent: ureq::Agent,
}

impl Client {
    /// A client whose exchanges last at most `cfg.timeout`. Redirects are
    /// not followed (a 3xx is [`Attempt::Failed`]); the `HTTPS_PROXY`,
    /// `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY` variables are honoured.
    pub fn new(cfg: &HttpConfig) -> Client {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(cfg.timeout))
            .user_agent(cfg.user_agent.as_str())
            .build();
        Client {
            agent: config.into(),
        }
    }
}

/// Makes `req` and says what came of it: a 2xx is [`Attempt::Delivered`];
/// a timeout, a connection that fails, a 5xx, a 429 or a 408 is
/// [`Attempt::Retry`]; any other answer is [`Attempt::Failed`]. Error texts
/// give the status and the start of the answer's body.
pub fn send(client: &Client, req: &Request) -> Attempt {
    let mut builder = ureq::http::Request::builder()
        .method(req.method.as_str())
        .uri(req.url.as_str());
    for (name, value) in &req.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    let http_req = match builder.body(req.body.as_bytes()) {
        Ok(r) => r,
        Err(e) => {
            return Attempt::Failed {
                error: format!(
                    "{} {}: invalid request: {e}",
                    req.method,
                    clip(&req.url, 200)
                ),
            };
        }
    };
    match client.agent.run(http_req) {
        Ok(mut answer) => {
            let status = answer.status();
            let line = match status.canonical_reason() {
                Some(reason) => format!("HTTP {} {reason}", status.as_u16()),
                None => format!("HTTP {}", status.as_u16()),
            };
            if status.is_success() {
                return Attempt::Delivered { detail: line };
            }
            let mut error = line;
            if status.is_redirection() {
                if let Some(to) = answer
                    .headers()
                    .get("location")
                    .and_then(|v| v.to_str().ok())
                {
                    error.push_str(&format!(
                        " to {} (redirects are not followed)",
                        clip(to, 200)
                    ));
                }
            } else {
                let excerpt = body_excerpt(answer.body_mut());
                if !excerpt.is_empty() {
                    error.push_str(": ");
                    error.push_str(&excerpt);
                }
            }
            classify(status.as_u16(), error)
        }
        Err(e) => transport_error(&e, req),
    }
}

/// [`Attempt`] of an answer with `status` (not 2xx), `error` its text.
fn classify(status: u16, error: String) -> Attempt {
    match status {
        200..=299 => Attempt::Delivered { detail: error },
        408 | 429 | 500..=599 => Attempt::Retry { error },
        _ => Attempt::Failed { error },
    }
}

fn transport_error(e: &ureq::Error, req: &Request) -> Attempt {
    use ureq::Error as E;
    let to = format!("{} {}", req.method, clip(&req.url, 200));
    match e {
        E::Timeout(_) => Attempt::Retry {
            error: format!("{to}: no answer in time ({e})"),
        },
        E::HostNotFound => Attempt::Retry {
            error: format!("{to}: host not found"),
        },
        E::ConnectionFailed => Attempt::Retry {
            error: format!("{to}: connection failed"),
        },
        // The request itself is wrong: trying again sends the same.
        E::BadUri(_)
        | E::Http(_)
        | E::RequireHttpsOnly(_)
        | E::TooManyRedirects
        | E::RedirectFailed
        | E::InvalidProxyUrl => Attempt::Failed {
            error: format!("{to}: {e}"),
        },
        // I/O, TLS, a broken answer: the receiver's side, which may heal.
        _ => Attempt::Retry {
            error: format!("{to}: {e}"),
        },
    }
}

/// The start of an answer's body on one line, at most [`BODY_EXCERPT`]
/// characters (reads at most 4 KiB).
fn body_excerpt(body: &mut ureq::Body) -> String {
    use std::io::Read as _;
    let mut buf = Vec::new();
    let _ = body.as_reader().take(4096).read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    clip(&one_line, BODY_EXCERPT)
}

/// `s` cut to `max` characters, `…` marking a cut.
fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// How long to wait before the next attempt after `attempts` attempts
/// have failed with [`Attempt::Retry`]; `None` once [`MAX_ATTEMPTS`] have
/// been made: the line becomes `failed`. The waits are 30 s, 1, 2, 4, 8,
/// 16 and 32 min, then 1 h (four times): 12 attempts over about 5 h 3 min.
/// No jitter: the schedule is the same on every run. `attempts == 0` (none
/// made yet) is due at once.
pub fn retry_delay(attempts: u32) -> Option<Duration> {
    match attempts {
        0 => Some(Duration::ZERO),
        n if n >= MAX_ATTEMPTS => None,
        n => Some(
            FIRST_DELAY
                .saturating_mul(1 << (n - 1).min(20))
                .min(MAX_DELAY),
        ),
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_772_445_600; // 2026-03-02T10:00:00Z

    fn cfg() -> HttpConfig {
        let mut c = HttpConfig::new(b"s3cret".to_vec());
        c.sms_url = Some("https://sms.example/send".into());
        c.push_url = Some("https://push.example/v1/notify".into());
        c.task_url = Some("http://crm.internal:8080/tasks".into());
        c
    }

    fn composed(channel: &str, parts: &[(&str, &str)]) -> Composed {
        Composed {
            template: format!("t_{channel}"),
            channel: channel.into(),
            kind: if matches!(channel, "task" | "webhook") {
                "operational".into()
            } else {
                "marketing".into()
            },
            to: match channel {
                "sms" => Some("+33612345678".into()),
                "push" => Some("device-token-1".into()),
                _ => None,
            },
            parts: parts
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            key: "k-0123".into(),
            at: NOW - 60,
            ..Composed::default()
        }
    }

    fn json(r: &Request) -> J {
        serde_json::from_str(&r.body).unwrap()
    }

    #[test]
    fn webhook_request_has_the_template_method_headers_and_body() {
        let mut c = composed(
            "webhook",
            &[
                ("url", "https://crm.example/hook?id=a%20b"),
                ("method", "PUT"),
                ("body", r#"{"email":"a@example.com"}"#),
            ],
        );
        c.headers
            .insert("Authorization".into(), "Bearer xyz".into());
        c.headers.insert("X-Source".into(), "relance".into());
        let r = request_at(&c, &cfg(), NOW).unwrap();
        assert_eq!(r.method, "PUT");
        assert_eq!(r.url, "https://crm.example/hook?id=a%20b");
        assert_eq!(r.body, r#"{"email":"a@example.com"}"#);
        assert_eq!(r.header("authorization"), Some("Bearer xyz"));
        assert_eq!(r.header("X-Source"), Some("relance"));
        assert_eq!(r.header("Content-Type"), Some("application/json"));
        assert_eq!(r.header("Idempotency-Key"), Some("k-0123"));
        assert_eq!(r.header("User-Agent"), Some(cfg().user_agent.as_str()));
        assert!(cfg().user_agent.starts_with("relance/"));
        let names: Vec<&str> = r.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "Content-Type",
                "Authorization",
                "X-Source",
                "User-Agent",
                "Idempotency-Key",
                "X-Relance-Signature"
            ]
        );
    }

    #[test]
    fn webhook_defaults_and_overrides() {
        let mut c = composed("webhook", &[("url", "https://crm.example/hook")]);
        c.headers.insert("content-type".into(), "text/plain".into());
        c.headers.insert("user-agent".into(), "acme".into());
        c.headers.insert("idempotency-key".into(), "mine".into());
        c.headers
            .insert("X-Relance-Signature".into(), "forged".into());
        let r = request_at(&c, &cfg(), NOW).unwrap();
        assert_eq!(r.method, "POST");
        assert_eq!(r.body, "");
        assert_eq!(r.header("content-type"), Some("text/plain"));
        assert_eq!(r.header("user-agent"), Some("acme"));
        assert_eq!(r.header("idempotency-key"), Some("k-0123"));
        assert_eq!(r.headers.len(), 4, "{:?}", r.headers);
        assert!(r.header(SIGNATURE_HEADER).unwrap().starts_with("t="));
    }

    #[test]
    fn the_signature_is_hmac_of_timestamp_dot_body() {
        let c = composed(
            "webhook",
            &[("url", "https://crm.example/h"), ("body", "{\"é\":1}")],
        );
        let r = request_at(&c, &cfg(), NOW).unwrap();
        let header = r.header(SIGNATURE_HEADER).unwrap();
        let (t, v1) = header.split_once(",v1=").unwrap();
        assert_eq!(t, format!("t={NOW}"));
        let mut signed = format!("{NOW}.").into_bytes();
        signed.extend_from_slice("{\"é\":1}".as_bytes());
        assert_eq!(v1, hex(&hmac_sha256(b"s3cret", &signed)));
        assert_eq!(
            verify_signature(b"s3cret", header, r.body.as_bytes(), NOW + 10, 300),
            Ok(())
        );
        // Another secret, another body, a stale timestamp: refused.
        assert!(verify_signature(b"other", header, r.body.as_bytes(), NOW, 300).is_err());
        assert!(verify_signature(b"s3cret", header, b"{\"e\":1}", NOW, 300).is_err());
        let stale = verify_signature(b"s3cret", header, r.body.as_bytes(), NOW + 301, 300);
        assert!(stale.unwrap_err().contains("301s"));
        assert!(verify_signature(b"s3cret", "v1=00", b"", NOW, 300).is_err());
    }

    #[test]
    fn sms_push_and_task_are_json_to_their_provider() {
        let sms = request_at(
            &composed("sms", &[("body", "Anna, -10% today")]),
            &cfg(),
            NOW,
        )
        .unwrap();
        assert_eq!(
            (sms.method.as_str(), sms.url.as_str()),
            ("POST", "https://sms.example/send")
        );
        assert_eq!(sms.header("content-type"), Some("application/json"));
        assert_eq!(
            json(&sms),
            serde_json::json!({"channel": "sms", "template": "t_sms", "kind": "marketing",
                "key": "k-0123", "at": "2026-03-02T09:59:00Z", "to": "+33612345678",
                "text": "Anna, -10% today"})
        );
        let push = request_at(
            &composed(
                "push",
                &[("title", "Your cart"), ("body", "Anna, it waits")],
            ),
            &cfg(),
            NOW,
        )
        .unwrap();
        assert_eq!(push.url, "https://push.example/v1/notify");
        assert_eq!(
            json(&push),
            serde_json::json!({"channel": "push", "template": "t_push", "kind": "marketing",
                "key": "k-0123", "at": "2026-03-02T09:59:00Z", "to": "device-token-1",
                "title": "Your cart", "body": "Anna, it waits"})
        );
        let task = request_at(
            &composed(
                "task",
                &[
                    ("body", "Call Anna"),
                    ("assignee", "Sam"),
                    ("due", "2026-03-03T10:00:00Z"),
                ],
            ),
            &cfg(),
            NOW,
        )
        .unwrap();
        assert_eq!(task.url, "http://crm.internal:8080/tasks");
        assert_eq!(
            json(&task),
            serde_json::json!({"channel": "task", "template": "t_task", "kind": "operational",
                "key": "k-0123", "at": "2026-03-02T09:59:00Z", "body": "Call Anna",
                "assignee": "Sam", "due": "2026-03-03T10:00:00Z"})
        );
        for r in [&sms, &push, &task] {
            assert_eq!(r.header("Idempotency-Key"), Some("k-0123"));
            let sig = r.header(SIGNATURE_HEADER).unwrap();
            assert_eq!(sig, signature(b"s3cret", NOW, r.body.as_bytes()));
        }
    }

    #[test]
    fn what_cannot_be_sent_is_an_error() {
        let err = |c: &Composed, cfg: &HttpConfig| request_at(c, cfg, NOW).unwrap_err();
        let none = HttpConfig::new(b"k".to_vec());
        let e = err(&composed("sms", &[("body", "x")]), &none);
        assert!(e.contains("--sms-url"), "{e}");
        assert!(err(&composed("push", &[]), &none).contains("--push-url"));
        assert!(err(&composed("task", &[]), &none).contains("--task-url"));
        let mut no_to = composed("sms", &[("body", "x")]);
        no_to.to = None;
        assert!(err(&no_to, &cfg()).contains("no address"));
        let hook = |url: &str| composed("webhook", &[("url", url)]);
        for bad in [
            "http://crm.example/hook",
            "ftp://crm.example/",
            "crm.example/hook",
            "https://",
            "https://crm.example/a b",
            "https://crm.exämple/",
        ] {
            let e = err(&hook(bad), &cfg());
            assert!(e.starts_with("webhook `t_webhook`: "), "{bad}: {e}");
        }
        for good in [
            "http://127.0.0.1:9/h",
            "http://localhost/h",
            "http://[::1]:8080/h",
        ] {
            assert!(request_at(&hook(good), &cfg(), NOW).is_ok(), "{good}");
        }
        assert!(err(&composed("webhook", &[]), &cfg()).contains("no `url` part"));
        let mut m = hook("https://x.example/");
        m.parts.insert("method".into(), "DELETE".into());
        assert!(err(&m, &cfg()).contains("DELETE"));
        let mut h = hook("https://x.example/");
        h.headers.insert("X-A".into(), "a\r\nX-B: b".into());
        assert!(err(&h, &cfg()).contains("line break"));
        let mut h = hook("https://x.example/");
        h.headers.insert("Bad Name".into(), "a".into());
        assert!(err(&h, &cfg()).contains("header name"));
        let mut h = hook("https://x.example/");
        h.headers.insert("Content-Length".into(), "3".into());
        assert!(err(&h, &cfg()).contains("Content-Length"));
        let mut email = composed("email", &[]);
        email.to = Some("a@example.com".into());
        assert!(err(&email, &cfg()).contains("not delivered over HTTP"));
        let mut bad_provider = cfg();
        bad_provider.sms_url = Some("sms.example".into());
        assert!(err(&composed("sms", &[("body", "x")]), &bad_provider).contains("--sms-url"));
    }

    #[test]
    fn webhook_base_replaces_the_origin() {
        let mut c = cfg();
        c.webhook_base = Some("http://127.0.0.1:9000/prefix/".into());
        let r = request_at(
            &composed("webhook", &[("url", "https://crm.example/hook?a=1")]),
            &c,
            NOW,
        )
        .unwrap();
        assert_eq!(r.url, "http://127.0.0.1:9000/prefix/hook?a=1");
    }

    #[test]
    fn answers_are_classified() {
        let kind = |s: u16| match classify(s, format!("HTTP {s}")) {
            Attempt::Delivered { .. } => "delivered",
            Attempt::Retry { .. } => "retry",
            Attempt::Failed { .. } => "failed",
        };
        for s in [200, 201, 202, 204, 299] {
            assert_eq!(kind(s), "delivered", "{s}");
        }
        for s in [408, 429, 500, 502, 503, 504, 599] {
            assert_eq!(kind(s), "retry", "{s}");
        }
        for s in [100, 301, 302, 304, 400, 401, 403, 404, 410, 422, 600] {
            assert_eq!(kind(s), "failed", "{s}");
        }
    }

    #[test]
    fn the_retry_schedule() {
        let secs: Vec<u64> = (1..MAX_ATTEMPTS)
            .map(|n| retry_delay(n).unwrap().as_secs())
            .collect();
        assert_eq!(
            secs,
            [30, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600, 3600]
        );
        assert_eq!(secs.iter().sum::<u64>(), 5 * 3600 + 3 * 60 + 30);
        assert_eq!(retry_delay(0), Some(Duration::ZERO));
        assert_eq!(retry_delay(MAX_ATTEMPTS), None);
        assert_eq!(retry_delay(u32::MAX), None);
    }

    #[test]
    fn clip_cuts_at_characters() {
        assert_eq!(clip("héllo", 2), "hé…");
        assert_eq!(clip("hé", 2), "hé");
    }
}
