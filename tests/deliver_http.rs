//! Delivery over HTTP end to end (`relance::deliver::http`): requests built
//! from `Composed` messages, sent to the plain receiver of
//! `tests/deliver/receiver.py`, and read back from what it recorded. The
//! signature is checked by recomputing it from the recorded bytes.

#[path = "deliver/receiver.rs"]
mod receiver;

use std::time::Duration;

use receiver::Receiver;
use relance::deliver::http::{self, Client, HttpConfig, Request, SIGNATURE_HEADER};
use relance::deliver::{Attempt, Composed, hex, hmac_sha256};
use serde_json::{Value, json};

const SECRET: &[u8] = b"deployment secret";

fn config(r: &Receiver) -> HttpConfig {
    let mut cfg = HttpConfig::new(SECRET.to_vec());
    cfg.sms_url = Some(r.url("/sms"));
    cfg.push_url = Some(r.url("/push"));
    cfg.task_url = Some(r.url("/tasks"));
    cfg.timeout = Duration::from_secs(2);
    cfg
}

fn message(channel: &str, to: Option<&str>, parts: &[(&str, &str)]) -> Composed {
    Composed {
        template: format!("{channel}_tpl"),
        channel: channel.into(),
        kind: if matches!(channel, "task" | "webhook") {
            "operational"
        } else {
            "marketing"
        }
        .into(),
        to: to.map(str::to_string),
        parts: parts
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        key: format!("key-{channel}-1"),
        at: 1_772_445_600,
        ..Composed::default()
    }
}

fn webhook(r: &Receiver) -> Composed {
    let mut c = message(
        "webhook",
        None,
        &[
            ("url", &r.url("/hook?contact=a%40example.com")),
            ("method", "PATCH"),
            ("body", "{\"email\":\"a@example.com\",\"name\":\"Zoë\"}"),
        ],
    );
    c.headers
        .insert("Authorization".into(), "Bearer t0ken".into());
    c
}

fn deliver(c: &Composed, cfg: &HttpConfig) -> (Request, Attempt) {
    let req = http::request(c, cfg).expect("a request");
    let attempt = http::send(&Client::new(cfg), &req);
    (req, attempt)
}

/// The recorded body's bytes (exact: what relance sends is UTF-8, which
/// the receiver decodes without loss).
fn bytes(recorded: &Value) -> Vec<u8> {
    recorded["body"].as_str().unwrap().as_bytes().to_vec()
}

/// Recomputes the signature of a recorded request as a receiver would.
fn assert_signed(recorded: &Value) {
    let header = recorded["headers"]["x-relance-signature"]
        .as_str()
        .expect("a signature header");
    let (t, v1) = header
        .strip_prefix("t=")
        .and_then(|h| h.split_once(",v1="))
        .unwrap_or_else(|| panic!("signature {header:?} is not t=…,v1=…"));
    let mut signed = format!("{t}.").into_bytes();
    signed.extend_from_slice(&bytes(recorded));
    assert_eq!(v1, hex(&hmac_sha256(SECRET, &signed)), "{recorded}");
    let t: i64 = t.parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((now - t).abs() <= 300, "timestamp {t}, now {now}");
    // And the library's reference check agrees.
    assert_eq!(
        http::verify_signature(SECRET, header, &bytes(recorded), now, 300),
        Ok(())
    );
    // Another secret does not verify.
    assert!(http::verify_signature(b"other", header, &bytes(recorded), now, 300).is_err());
}

fn delivered(a: &Attempt) -> &str {
    match a {
        Attempt::Delivered { detail } => detail,
        other => panic!("expected Delivered, got {other:?}"),
    }
}

fn retry(a: &Attempt) -> &str {
    match a {
        Attempt::Retry { error } => error,
        other => panic!("expected Retry, got {other:?}"),
    }
}

fn failed(a: &Attempt) -> &str {
    match a {
        Attempt::Failed { error } => error,
        other => panic!("expected Failed, got {other:?}"),
    }
}

#[test]
fn a_webhook_arrives_with_its_method_headers_body_and_signature() {
    let Some(r) = Receiver::start(&[]) else {
        return;
    };
    let cfg = config(&r);
    let c = webhook(&r);
    let (req, attempt) = deliver(&c, &cfg);
    assert_eq!(delivered(&attempt), "HTTP 200 OK");
    let got = r.requests();
    assert_eq!(got.len(), 1, "{got:?}");
    let g = &got[0];
    assert_eq!(g["method"], "PATCH");
    assert_eq!(g["path"], "/hook?contact=a%40example.com");
    assert_eq!(g["body"], "{\"email\":\"a@example.com\",\"name\":\"Zoë\"}");
    assert_eq!(bytes(g), req.body.as_bytes());
    let h = &g["headers"];
    assert_eq!(h["authorization"], "Bearer t0ken");
    assert_eq!(h["content-type"], "application/json");
    assert_eq!(h["idempotency-key"], "key-webhook-1");
    assert_eq!(h["user-agent"], cfg.user_agent.as_str());
    assert_eq!(
        h["x-relance-signature"],
        req.header(SIGNATURE_HEADER).unwrap()
    );
    assert_signed(g);
}

#[test]
fn a_task_an_sms_and_a_push_go_to_their_provider_as_json() {
    let Some(r) = Receiver::start(&["--status", "202"]) else {
        return;
    };
    let cfg = config(&r);
    let task = message(
        "task",
        None,
        &[("body", "Call Anna (+33 6 12)"), ("assignee", "Sam")],
    );
    let sms = message(
        "sms",
        Some("+33612345678"),
        &[(
            "body",
            "Anna, -10% today: https://acme.example/o STOP 36180",
        )],
    );
    let push = message(
        "push",
        Some("fcm:abc123"),
        &[
            ("title", "Your cart"),
            ("body", "Anna, your cart is waiting"),
        ],
    );
    for c in [&task, &sms, &push] {
        let (_, attempt) = deliver(c, &cfg);
        assert_eq!(delivered(&attempt), "HTTP 202 Accepted");
    }
    let got = r.requests();
    assert_eq!(got.len(), 3, "{got:?}");
    let common = |channel: &str, kind: &str| {
        json!({"channel": channel, "template": format!("{channel}_tpl"), "kind": kind,
            "key": format!("key-{channel}-1"), "at": "2026-03-02T10:00:00Z"})
    };
    let with = |mut base: Value, more: Value| {
        base.as_object_mut()
            .unwrap()
            .extend(more.as_object().unwrap().clone());
        base
    };
    let expected = [
        (
            "/tasks",
            with(
                common("task", "operational"),
                json!({"body": "Call Anna (+33 6 12)", "assignee": "Sam"}),
            ),
        ),
        (
            "/sms",
            with(
                common("sms", "marketing"),
                json!({"to": "+33612345678", "text": "Anna, -10% today: https://acme.example/o STOP 36180"}),
            ),
        ),
        (
            "/push",
            with(
                common("push", "marketing"),
                json!({"to": "fcm:abc123", "title": "Your cart", "body": "Anna, your cart is waiting"}),
            ),
        ),
    ];
    for (g, (path, body)) in got.iter().zip(expected) {
        assert_eq!(g["method"], "POST");
        assert_eq!(g["path"], path);
        assert_eq!(g["headers"]["content-type"], "application/json");
        let sent: Value = serde_json::from_str(g["body"].as_str().unwrap()).unwrap();
        assert_eq!(sent, body);
        assert_eq!(g["headers"]["idempotency-key"], body["key"]);
        assert_signed(g);
    }
}

#[test]
fn a_500_is_retried_and_the_next_attempt_is_delivered() {
    let Some(r) = Receiver::start(&["--fail", "500", "--times", "1"]) else {
        return;
    };
    let cfg = config(&r);
    let c = webhook(&r);
    let (_, first) = deliver(&c, &cfg);
    let error = retry(&first);
    assert!(
        error.starts_with("HTTP 500 Internal Server Error: {\"error\": \"injected 500\"}"),
        "{error}"
    );
    let (_, second) = deliver(&c, &cfg);
    assert_eq!(delivered(&second), "HTTP 200 OK");
    let got = r.requests();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0]["answer"], 500);
    assert_eq!(got[1]["answer"], 200);
    // The same message: the same idempotency key, so a receiver that saw
    // the first can drop the second.
    assert_eq!(
        got[0]["headers"]["idempotency-key"],
        got[1]["headers"]["idempotency-key"]
    );
    assert_signed(&got[1]);
}

#[test]
fn a_429_is_retried() {
    let Some(r) = Receiver::start(&["--fail", "429"]) else {
        return;
    };
    let cfg = config(&r);
    let (_, a) = deliver(&message("sms", Some("+1555"), &[("body", "x")]), &cfg);
    assert!(retry(&a).starts_with("HTTP 429 Too Many Requests"), "{a:?}");
}

#[test]
fn an_answer_that_never_comes_is_retried_after_the_timeout() {
    let Some(r) = Receiver::start(&["--fail", "hang", "--hang-seconds", "60"]) else {
        return;
    };
    let mut cfg = config(&r);
    cfg.timeout = Duration::from_secs(1);
    let (_, a) = deliver(&webhook(&r), &cfg);
    let error = retry(&a);
    assert!(error.contains("no answer in time"), "{error}");
    assert!(error.starts_with("PATCH http://127.0.0.1:"), "{error}");
    let got = r.requests();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["answer"], "hang");
}

#[test]
fn a_404_fails_for_good() {
    let Some(r) = Receiver::start(&["--fail", "404"]) else {
        return;
    };
    let cfg = config(&r);
    let (_, a) = deliver(&message("push", Some("tok"), &[("title", "t")]), &cfg);
    assert_eq!(
        failed(&a),
        "HTTP 404 Not Found: {\"error\": \"injected 404\"}"
    );
}

#[test]
fn a_redirect_is_not_followed() {
    let Some(r) = Receiver::start(&[]) else {
        return;
    };
    let settings = r.control(json!({"fail": 302, "times": 1}));
    assert_eq!(settings["fail"], "302");
    let cfg = config(&r);
    let (_, a) = deliver(&webhook(&r), &cfg);
    assert!(failed(&a).starts_with("HTTP 302 Found"), "{a:?}");
    assert_eq!(r.requests().len(), 1);
}

#[test]
fn a_refused_connection_is_retried() {
    // A port that nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cfg = HttpConfig::new(SECRET.to_vec());
    cfg.sms_url = Some(format!("http://127.0.0.1:{port}/sms"));
    let (_, a) = deliver(&message("sms", Some("+1555"), &[("body", "x")]), &cfg);
    let error = retry(&a);
    assert!(
        error.starts_with(&format!("POST http://127.0.0.1:{port}/sms: ")),
        "{error}"
    );
}

/// The Python block of docs/delivery.md that defines `verify`.
fn doc_verify_snippet() -> String {
    let doc = include_str!("../docs/delivery.md");
    let start = doc
        .find("```python\n")
        .expect("docs/delivery.md has a ```python block")
        + "```python\n".len();
    let len = doc[start..].find("```").expect("the block ends");
    let block = &doc[start..start + len];
    assert!(block.contains("def verify("), "{block}");
    block.to_string()
}

#[test]
fn the_documented_python_check_verifies_a_real_request() {
    let Some(r) = Receiver::start(&[]) else {
        return;
    };
    let py = receiver::python().unwrap();
    let (_, a) = deliver(&webhook(&r), &config(&r));
    delivered(&a);
    let recorded = r.requests().remove(0);
    let script = format!(
        "{}\n\nimport json, os, sys\n\
         rec = json.loads(sys.stdin.read())\n\
         secret = os.environ['SECRET'].encode()\n\
         body = rec['body'].encode()\n\
         header = rec['headers']['x-relance-signature']\n\
         print(verify(secret, header, body), verify(secret, header, body + b' '), \
         verify(b'other', header, body), verify(secret, header, body, tolerance=-1))\n",
        doc_verify_snippet()
    );
    let mut child = std::process::Command::new(py)
        .args(["-c", &script])
        .env("SECRET", std::str::from_utf8(SECRET).unwrap())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(recorded.to_string().as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "True False False False"
    );
}
