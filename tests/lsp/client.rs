//! A small LSP client over the real `relance lsp` process: JSON-RPC with
//! `Content-Length` framing on its standard input and output.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const BIN: &str = env!("CARGO_BIN_EXE_relance");

/// How long any one answer may take before the test gives up: a bound on
/// hanging (a debug build checks the sample project in well under a
/// second), not a timing assertion.
pub const BOUND: Duration = Duration::from_secs(120);

pub struct Client {
    child: Child,
    stdin: ChildStdin,
    rx: Receiver<Value>,
    next_id: i64,
    /// The last diagnostics published per URI, and how many times.
    pub diagnostics: HashMap<String, Vec<Value>>,
    pub publications: HashMap<String, usize>,
    /// The document version of the last publication per URI.
    pub versions: HashMap<String, i64>,
    /// Every notification seen, in order.
    pub notifications: Vec<Value>,
}

pub fn uri(path: &Path) -> String {
    let abs = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    format!("file://{}", abs.display())
}

impl Client {
    /// Starts `relance lsp` with `root` as the workspace folder.
    pub fn start(root: &Path) -> Client {
        Self::start_with(root, json!({}))
    }

    pub fn start_with(root: &Path, capabilities: Value) -> Client {
        let mut child = Command::new(BIN)
            .arg("lsp")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start relance lsp");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            loop {
                let mut len = None;
                loop {
                    let mut line = String::new();
                    match r.read_line(&mut line) {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    let line = line.trim_end();
                    if line.is_empty() {
                        break;
                    }
                    if let Some(v) = line.strip_prefix("Content-Length: ") {
                        len = v.parse::<usize>().ok();
                    }
                }
                let Some(len) = len else { return };
                let mut body = vec![0; len];
                if r.read_exact(&mut body).is_err() {
                    return;
                }
                let Ok(v) = serde_json::from_slice::<Value>(&body) else {
                    return;
                };
                if tx.send(v).is_err() {
                    return;
                }
            }
        });
        let mut c = Client {
            child,
            stdin,
            rx,
            next_id: 0,
            diagnostics: HashMap::new(),
            publications: HashMap::new(),
            versions: HashMap::new(),
            notifications: Vec::new(),
        };
        let root_uri = uri(root);
        let result = c.request(
            "initialize",
            json!({
                "processId": null,
                "rootUri": root_uri,
                "workspaceFolders": [{ "uri": root_uri, "name": "project" }],
                "capabilities": capabilities,
            }),
        );
        assert!(
            result["capabilities"]["hoverProvider"] == json!(true),
            "initialize result: {result}"
        );
        c.notify("initialized", json!({}));
        c
    }

    pub fn send(&mut self, msg: Value) {
        let body = serde_json::to_string(&msg).unwrap();
        write!(self.stdin, "Content-Length: {}\r\n\r\n{body}", body.len()).expect("write");
        self.stdin.flush().expect("flush");
    }

    pub fn notify(&mut self, method: &str, params: Value) {
        self.send(json!({ "jsonrpc": "2.0", "method": method, "params": params }));
    }

    fn take(&mut self, v: Value) -> Option<Value> {
        if v.get("id").is_some() && v.get("method").is_none() {
            return Some(v);
        }
        if v["method"] == "textDocument/publishDiagnostics" {
            let uri = v["params"]["uri"].as_str().unwrap_or_default().to_string();
            let list = v["params"]["diagnostics"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            *self.publications.entry(uri.clone()).or_default() += 1;
            if let Some(v) = v["params"]["version"].as_i64() {
                self.versions.insert(uri.clone(), v);
            }
            self.diagnostics.insert(uri, list);
        }
        self.notifications.push(v);
        None
    }

    fn next(&mut self, until: Instant) -> Option<Value> {
        let left = until.saturating_duration_since(Instant::now());
        match self.rx.recv_timeout(left) {
            Ok(v) => Some(v),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => panic!("relance lsp closed its output"),
        }
    }

    /// Sends a request and waits for its response (the full message).
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        self.send(json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }));
        let until = Instant::now() + BOUND;
        loop {
            let Some(v) = self.next(until) else {
                panic!("no answer to {method} within {BOUND:?}");
            };
            if let Some(r) = self.take(v)
                && r["id"] == json!(id)
            {
                return r;
            }
        }
    }

    /// A request's result; fails on an error response.
    pub fn request(&mut self, method: &str, params: Value) -> Value {
        let r = self.call(method, params);
        assert!(r.get("error").is_none(), "{method} failed: {r}");
        r["result"].clone()
    }

    /// Reads messages until `ok` holds for the diagnostics of `uri`.
    pub fn wait_diagnostics(&mut self, uri: &str, ok: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let until = Instant::now() + BOUND;
        loop {
            if let Some(d) = self.diagnostics.get(uri)
                && ok(d)
            {
                return d.clone();
            }
            let Some(v) = self.next(until) else {
                panic!(
                    "the diagnostics of {uri} never satisfied the test; last: {:?}",
                    self.diagnostics.get(uri)
                );
            };
            self.take(v);
        }
    }

    /// Reads messages until `ok` holds (true) or the bound passes (false):
    /// diagnostics settle on the full check's after the first phase's.
    pub fn settle(&mut self, ok: impl Fn(&Client) -> bool) -> bool {
        let until = Instant::now() + BOUND;
        loop {
            if ok(self) {
                return true;
            }
            let Some(v) = self.next(until) else {
                return false;
            };
            self.take(v);
        }
    }

    /// Reads messages until diagnostics of `uri` at `version` are published.
    pub fn wait_version(&mut self, uri: &str, version: i64) -> Vec<Value> {
        let until = Instant::now() + BOUND;
        loop {
            if self.versions.get(uri) == Some(&version) {
                return self.diagnostics.get(uri).cloned().unwrap_or_default();
            }
            let Some(v) = self.next(until) else {
                panic!("no diagnostics of {uri} at version {version}");
            };
            self.take(v);
        }
    }

    /// Waits until the server has answered everything sent so far (a
    /// request's answer comes after every earlier message was handled).
    pub fn sync(&mut self) {
        self.request("workspace/symbol", json!({ "query": "zzzz_no_such_name" }));
    }

    pub fn open(&mut self, path: &Path, text: &str) -> String {
        let u = uri(path);
        self.notify(
            "textDocument/didOpen",
            json!({ "textDocument": { "uri": u, "languageId": "relance", "version": 1, "text": text } }),
        );
        u
    }

    pub fn change(&mut self, uri: &str, version: i64, text: &str) {
        self.notify(
            "textDocument/didChange",
            json!({ "textDocument": { "uri": uri, "version": version }, "contentChanges": [{ "text": text }] }),
        );
    }

    pub fn at(uri: &str, line: usize, character: usize) -> Value {
        json!({ "textDocument": { "uri": uri }, "position": { "line": line, "character": character } })
    }

    /// `shutdown` then `exit`; returns the exit code.
    pub fn shutdown(mut self) -> i32 {
        let r = self.call("shutdown", Value::Null);
        assert!(r.get("error").is_none(), "shutdown failed: {r}");
        self.notify("exit", Value::Null);
        self.wait_exit()
    }

    pub fn wait_exit(&mut self) -> i32 {
        let until = Instant::now() + BOUND;
        loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                return s.code().unwrap_or(-1);
            }
            assert!(Instant::now() < until, "relance lsp did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Line and character (UTF-16 units) of `skip` characters after the
/// first occurrence of `needle` in `text`.
pub fn pos_of(text: &str, needle: &str, skip: usize) -> (usize, usize) {
    let at = text
        .find(needle)
        .unwrap_or_else(|| panic!("`{needle}` not in the text"));
    position(text, at, skip)
}

/// As [`pos_of`], for the last occurrence.
pub fn pos_of_last(text: &str, needle: &str, skip: usize) -> (usize, usize) {
    let at = text
        .rfind(needle)
        .unwrap_or_else(|| panic!("`{needle}` not in the text"));
    position(text, at, skip)
}

fn position(text: &str, at: usize, skip: usize) -> (usize, usize) {
    let target = text[at..]
        .char_indices()
        .nth(skip)
        .map_or(text.len(), |(i, _)| at + i);
    let before = &text[..target];
    let line = before.matches('\n').count();
    let col = before[before.rfind('\n').map_or(0, |i| i + 1)..]
        .encode_utf16()
        .count();
    (line, col)
}

/// Applies LSP text edits (UTF-16 positions) to `text`.
pub fn apply(text: &str, edits: &[Value]) -> String {
    let offset = |line: u64, ch: u64| -> usize {
        let mut start = 0;
        for _ in 0..line {
            start = text[start..]
                .find('\n')
                .map_or(text.len(), |i| start + i + 1);
        }
        let mut units = 0;
        for (i, c) in text[start..].char_indices() {
            if units >= ch as usize || c == '\n' {
                return start + i;
            }
            units += c.len_utf16();
        }
        text.len()
    };
    let mut spans: Vec<(usize, usize, String)> = edits
        .iter()
        .map(|e| {
            let r = &e["range"];
            let s = offset(
                r["start"]["line"].as_u64().unwrap(),
                r["start"]["character"].as_u64().unwrap(),
            );
            let t = offset(
                r["end"]["line"].as_u64().unwrap(),
                r["end"]["character"].as_u64().unwrap(),
            );
            (s, t, e["newText"].as_str().unwrap().to_string())
        })
        .collect();
    spans.sort_by_key(|s| std::cmp::Reverse(s.0));
    let mut out = text.to_string();
    for (s, t, new) in spans {
        out.replace_range(s..t, &new);
    }
    out
}

/// A copy of a folder (files only, recursively).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        let name = e.file_name();
        if name == "build" {
            continue;
        }
        if p.is_dir() {
            copy_dir(&p, &to.join(&name));
        } else {
            std::fs::copy(&p, to.join(&name)).unwrap();
        }
    }
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A unique temporary folder, removed when dropped.
pub struct Temp(pub PathBuf);

impl Temp {
    pub fn new(tag: &str) -> Temp {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("relance-lsp-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Temp(std::fs::canonicalize(&p).unwrap())
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A copy of `campaigns/` in a temporary folder.
pub fn campaigns(tag: &str) -> Temp {
    let t = Temp::new(tag);
    copy_dir(&repo().join("campaigns"), t.path());
    t
}
