//! Helpers for the tests that run the real binary: a temporary folder; for
//! `relance watch` a small project, the process with its output, and a raw
//! HTTP client (raw, so that the tests choose the exact request line and
//! `Host` header); for the runner, a project built then run (`project`).
#![allow(dead_code)]

pub mod project;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_relance");
pub const NOW: &str = "2026-11-23T08:00:00Z";

/// A unique temporary folder, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("relance-test-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn write(&self, rel: &str, text: &str) {
        let p = self.0.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(p, text).unwrap();
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A small project: two personas, an email whose HTML is a file with a
/// partial, and an SMS. `templates/hello.html.hbs` line 2 holds the
/// greeting the tests edit.
pub fn small_project(tag: &str) -> TempDir {
    let t = TempDir::new(tag);
    t.write(
        "project.camp",
        r#"workspace {
  name    = "Garage Martin"
  from    = "Garage <hello@garage.example>"
  address = "1 rue de la Paix, Lyon"
}

contact {
  email:      email
  phone:      phone?
  first_name: text?
}

/// Marie runs a garage.
persona marie {
  email      = "marie@example.com"
  first_name = "Marie"
}

persona paul {
  email = "paul@example.com"
  phone = "+33600000000"
}

template hello : email {
  subject = "Hello {{default first_name \"friend\"}}"
  html    = file("templates/hello.html.hbs")
}

template ping : sms { body = "{{default first_name \"Hi\"}}, see you soon. STOP 36180" }

consent sms = true
"#,
    );
    t.write(
        "templates/hello.html.hbs",
        "<html><body>\n<p>Greeting: Bonjour {{default first_name \"friend\"}}</p>\n<div style=\"height:2000px\">tall</div>\n{{> footer}}\n</body></html>\n",
    );
    t.write(
        "templates/partials/footer.hbs",
        "<p>{{workspace.address}} <a href=\"{{unsubscribe_url}}\">Unsubscribe</a></p>\n",
    );
    t
}

/// A running `relance watch`, killed when dropped.
pub struct Watch {
    child: Child,
    pub port: u16,
    pub url: String,
    /// Every line written to stderr so far.
    pub stderr: Arc<Mutex<Vec<String>>>,
}

impl Watch {
    pub fn start(dir: &Path) -> Watch {
        Watch::start_with(dir, &[])
    }

    pub fn start_with(dir: &Path, extra: &[&str]) -> Watch {
        let mut child = Command::new(BIN)
            .arg("watch")
            .arg(dir)
            .args(["--port", "0", "--now", NOW, "--color", "never"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start relance watch");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let err = child.stderr.take().unwrap();
        let lines = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                lines.lock().unwrap().push(line);
            }
        });
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        out.read_line(&mut first).expect("read the URL line");
        // Keep draining stdout so the process never blocks on it.
        std::thread::spawn(move || {
            let mut sink = String::new();
            while out.read_line(&mut sink).is_ok_and(|n| n > 0) {
                sink.clear();
            }
        });
        let url = first
            .trim()
            .strip_prefix("Serving previews at ")
            .unwrap_or_else(|| {
                panic!(
                    "first stdout line is not the URL: {first:?}; stderr: {:?}",
                    stderr.lock().unwrap()
                )
            })
            .to_string();
        let port = url
            .trim_end_matches('/')
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("a port in the URL");
        let w = Watch {
            child,
            port,
            url,
            stderr,
        };
        w.wait_for(Duration::from_secs(60), "the first build", |w| {
            w.lines().iter().any(|l| l.contains("] built in"))
        });
        w
    }

    pub fn lines(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    /// Lines that report a build (`built in` / `rebuilt in`).
    pub fn builds(&self) -> usize {
        self.lines()
            .iter()
            .filter(|l| l.contains("built in"))
            .count()
    }

    pub fn get(&self, path: &str) -> HttpResponse {
        http(
            self.port,
            "GET",
            path,
            &format!("127.0.0.1:{}", self.port),
            None,
        )
    }

    pub fn status(&self) -> serde_json::Value {
        let r = self.get("/__relance/status");
        assert_eq!(r.status, 200);
        serde_json::from_slice(&r.body).expect("status is JSON")
    }

    /// Polls `ok` every 20 ms until it holds; panics with `what` after
    /// `timeout`.
    pub fn wait_for(&self, timeout: Duration, what: &str, ok: impl Fn(&Watch) -> bool) {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if ok(self) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "timed out waiting for {what}; relance watch said:\n{}",
            self.lines().join("\n")
        );
    }

    /// Waits until `path` is served with `text` in it.
    pub fn wait_for_text(&self, path: &str, text: &str) {
        self.wait_for(
            Duration::from_secs(20),
            &format!("`{text}` in {path}"),
            |w| {
                let r = w.get(path);
                r.status == 200 && r.text().contains(text)
            },
        );
    }

    /// The process id of `relance watch`.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request with exactly this target and `Host`, read until the
/// server closes.
pub fn http(port: u16, method: &str, target: &str, host: &str, body: Option<&str>) -> HttpResponse {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!("{method} {target} HTTP/1.1\r\n");
    if !host.is_empty() {
        req.push_str(&format!("Host: {host}\r\n"));
    }
    req.push_str("Connection: close\r\n");
    if let Some(b) = body {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            b.len()
        ));
    }
    req.push_str("\r\n");
    if let Some(b) = body {
        req.push_str(b);
    }
    s.write_all(req.as_bytes()).expect("send");
    parse_response(&read_response(&mut s))
}

/// The raw bytes of one response: up to its `Content-Length`, to the last
/// chunk, or to the end of the connection (servers may keep it open
/// despite `Connection: close`).
fn read_response(s: &mut TcpStream) -> Vec<u8> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        if let Some(head_end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..head_end]).to_ascii_lowercase();
            let body = raw.len() - head_end - 4;
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok());
            if length.is_some_and(|n| body >= n) {
                break;
            }
            if head.contains("transfer-encoding: chunked") && raw.ends_with(b"0\r\n\r\n") {
                break;
            }
        }
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
    }
    raw
}

pub fn parse_response(raw: &[u8]) -> HttpResponse {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(raw.len());
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw.get(split + 4..).unwrap_or(&[]).to_vec();
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    if chunked {
        body = dechunk(&body);
    }
    HttpResponse {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = data.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&data[..end])
                .split(';')
                .next()
                .unwrap_or("")
                .trim(),
            16,
        )
        .unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = end + 2;
        out.extend_from_slice(&data[start..(start + size).min(data.len())]);
        data = &data[(start + size + 2).min(data.len())..];
    }
    out
}

/// A server-sent events client of `/__relance/events`.
pub struct Events {
    reader: BufReader<TcpStream>,
}

impl Events {
    pub fn connect(port: u16) -> Events {
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let _ = s.set_nodelay(true);
        write!(
            s,
            "GET /__relance/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n\r\n"
        )
        .unwrap();
        let mut reader = BufReader::new(s);
        // The response head.
        let mut line = String::new();
        loop {
            line.clear();
            reader.read_line(&mut line).expect("event stream head");
            if line == "\r\n" || line.is_empty() {
                break;
            }
        }
        Events { reader }
    }

    /// The data of the next `build` event, as JSON.
    pub fn next_build(&mut self) -> serde_json::Value {
        let mut event = String::new();
        let mut data = String::new();
        let mut line = String::new();
        loop {
            line.clear();
            let n = self.reader.read_line(&mut line).expect("read an event");
            assert!(n > 0, "the event stream closed");
            let l = line.trim_end_matches(['\r', '\n']);
            if l.is_empty() {
                if event == "build" {
                    return serde_json::from_str(&data).expect("event data is JSON");
                }
                event.clear();
                data.clear();
            } else if let Some(e) = l.strip_prefix("event: ") {
                event = e.to_string();
            } else if let Some(d) = l.strip_prefix("data: ") {
                data.push_str(d);
            }
        }
    }
}
