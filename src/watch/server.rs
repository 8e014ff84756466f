//! The preview server of `relance watch`: build output from memory,
//! server-sent events for live reload, and the status of the last build.
//!
//! Safety rules (see `docs/watch.md`):
//! - it listens on `127.0.0.1` only;
//! - it answers only requests whose `Host` is `localhost:PORT`,
//!   `127.0.0.1:PORT` or `[::1]:PORT` (403 otherwise), so that a web page
//!   whose domain resolves to 127.0.0.1 (DNS rebinding) cannot read it;
//! - it serves only the files of the last good build, held in memory and
//!   looked up by exact path: nothing on disk is ever opened from a URL, and
//!   paths with `..`, `.`, backslashes, NUL or encoded slashes are refused
//!   (403) before the lookup.

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use tiny_http::{Header, Method, Request, Response};

use super::build::Site;

/// The script every HTML page gets: live reload and the error overlay.
pub const LIVE_JS: &str = include_str!("live.js");

/// URLs under this prefix belong to the server, not to the build output.
pub const RESERVED: &str = "/__relance/";

/// At most this many pages listen for rebuilds at once (a thread each).
const MAX_EVENT_CLIENTS: usize = 64;
/// An idle event stream gets a comment this often, so that a closed tab is
/// noticed and its thread ends.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
const WORKERS: usize = 4;

/// What the server shows: the last good site and the last build's status.
pub struct Shared {
    live: Mutex<Live>,
    changed: Condvar,
}

struct Live {
    /// Counts builds.
    generation: u64,
    /// Counts changes of the site's files.
    site_generation: u64,
    site: Arc<Site>,
    /// The status of the last build, as JSON (see [`Shared::publish`]).
    status: Arc<String>,
}

impl Default for Shared {
    fn default() -> Shared {
        Shared {
            live: Mutex::new(Live {
                generation: 0,
                site_generation: 0,
                site: Arc::new(Site::new()),
                status: Arc::new("{\"generation\":0,\"site\":0,\"building\":true}".to_string()),
            }),
            changed: Condvar::new(),
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Live> {
        // A panicking reader cannot leave `Live` half-written: every
        // update is a few assignments. Keep serving.
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Publishes a build: its site, when it had no error (otherwise the
    /// last good one stays), and its status, a JSON object to which
    /// `generation` and `site` are added. Returns whether the site changed.
    pub fn publish(&self, site: Option<Site>, mut status: serde_json::Value) -> bool {
        let mut live = self.lock();
        live.generation += 1;
        let mut changed = false;
        if let Some(site) = site
            && !site.same_as(&live.site)
        {
            live.site = Arc::new(site);
            live.site_generation += 1;
            changed = true;
        }
        if let Some(o) = status.as_object_mut() {
            o.insert("generation".into(), live.generation.into());
            o.insert("site".into(), live.site_generation.into());
        }
        live.status = Arc::new(status.to_string());
        drop(live);
        self.changed.notify_all();
        changed
    }

    /// The current build and site generations.
    pub fn generations(&self) -> (u64, u64) {
        let live = self.lock();
        (live.generation, live.site_generation)
    }

    fn snapshot(&self) -> (u64, Arc<Site>, Arc<String>) {
        let live = self.lock();
        (live.site_generation, live.site.clone(), live.status.clone())
    }

    /// Waits until a build newer than `seen` is published, or `timeout`.
    fn wait_newer(&self, seen: u64, timeout: Duration) -> (u64, Arc<String>) {
        let live = self.lock();
        let (live, _) = self
            .changed
            .wait_timeout_while(live, timeout, |l| l.generation <= seen)
            .unwrap_or_else(|e| e.into_inner());
        (live.generation, live.status.clone())
    }
}

/// Why the server could not start.
#[derive(Debug)]
pub enum BindError {
    /// Another program listens on the port.
    InUse(u16),
    Other(String),
}

/// A running preview server.
pub struct Server {
    port: u16,
}

impl Server {
    /// Listens on `127.0.0.1:port` (`0`: any free port) and serves `shared`
    /// from a few worker threads, until the process ends.
    pub fn start(port: u16, shared: Arc<Shared>) -> Result<Server, BindError> {
        let listener = TcpListener::bind(("127.0.0.1", port)).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AddrInUse {
                BindError::InUse(port)
            } else {
                BindError::Other(e.to_string())
            }
        })?;
        let port = listener
            .local_addr()
            .map(|a: SocketAddr| a.port())
            .map_err(|e| BindError::Other(e.to_string()))?;
        let http = tiny_http::Server::from_listener(listener, None)
            .map_err(|e| BindError::Other(e.to_string()))?;
        let http = Arc::new(http);
        let clients = Arc::new(AtomicUsize::new(0));
        for _ in 0..WORKERS {
            let (http, shared, clients) = (http.clone(), shared.clone(), clients.clone());
            std::thread::spawn(move || {
                while let Ok(request) = http.recv() {
                    handle(request, port, &shared, &clients);
                }
            });
        }
        Ok(Server { port })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }
}

/// Whether `host` (a `Host` header) names this server on the loopback.
pub fn host_allowed(host: &str, port: u16) -> bool {
    let host = host.trim();
    let Some((name, p)) = host.rsplit_once(':') else {
        return false;
    };
    p == port.to_string()
        && (name.eq_ignore_ascii_case("localhost") || name == "127.0.0.1" || name == "[::1]")
}

/// Where a request path leads.
#[derive(Debug, PartialEq, Eq)]
pub enum Target {
    /// A file of the build output, by its path relative to the build folder.
    File(String),
    /// A path of the server itself (under [`RESERVED`]), without the prefix.
    Reserved(String),
    /// `/`: the index of the previews.
    Root,
    /// Refused before any lookup: traversal, encoded separators, NUL.
    Forbidden,
}

/// Decodes a request target once and refuses anything that could name a
/// file outside the build output: `..` or `.` segments, backslashes and
/// NUL (plain or percent-encoded), encoded slashes, control characters,
/// and targets that are not a plain path (`http://…`, `*`).
pub fn resolve(target: &str) -> Target {
    let path = target.split(['?', '#']).next().unwrap_or("");
    if !path.starts_with('/') {
        return Target::Forbidden;
    }
    let raw = path.as_bytes();
    let mut bytes = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b == b'%' {
            let hex = |c: u8| (c as char).to_digit(16);
            let (Some(h), Some(l)) = (
                raw.get(i + 1).and_then(|&c| hex(c)),
                raw.get(i + 2).and_then(|&c| hex(c)),
            ) else {
                return Target::Forbidden;
            };
            let d = (h * 16 + l) as u8;
            // An encoded separator would hide a segment boundary.
            if d == b'/' || d == b'\\' {
                return Target::Forbidden;
            }
            bytes.push(d);
            i += 3;
        } else {
            bytes.push(b);
            i += 1;
        }
    }
    let Ok(decoded) = String::from_utf8(bytes) else {
        return Target::Forbidden;
    };
    if decoded.chars().any(|c| c.is_control() || c == '\\') {
        return Target::Forbidden;
    }
    if decoded == "/" {
        return Target::Root;
    }
    let rest = &decoded[1..];
    if rest.split('/').any(|s| s == ".." || s == ".") {
        return Target::Forbidden;
    }
    if let Some(r) = decoded.strip_prefix(RESERVED) {
        return Target::Reserved(r.to_string());
    }
    let mut key = rest.to_string();
    if key.ends_with('/') {
        key.push_str("index.html");
    }
    Target::File(key)
}

fn content_type(path: &str) -> &'static str {
    let ext = path.rsplit_once('.').map_or("", |(_, e)| e);
    match ext {
        "html" => "text/html; charset=utf-8",
        "txt" => "text/plain; charset=utf-8",
        "json" => "application/json",
        "js" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        _ => "application/octet-stream",
    }
}

fn header(name: &str, value: &str) -> Option<Header> {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).ok()
}

fn send(request: Request, status: u16, content_type: &str, body: Vec<u8>, extra: &[(&str, &str)]) {
    let mut response = Response::from_data(body).with_status_code(status);
    let headers = [
        ("Content-Type", content_type),
        ("Cache-Control", "no-store"),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
    ];
    for (k, v) in headers.iter().chain(extra) {
        if let Some(h) = header(k, v) {
            response.add_header(h);
        }
    }
    // The client may have gone; nothing to do about it.
    let _ = request.respond(response);
}

fn plain(request: Request, status: u16, text: &str) {
    send(
        request,
        status,
        "text/plain; charset=utf-8",
        format!("{text}\n").into_bytes(),
        &[],
    );
}

fn handle(request: Request, port: u16, shared: &Arc<Shared>, clients: &Arc<AtomicUsize>) {
    let host = request
        .headers()
        .iter()
        .find(|h| h.field.equiv("Host"))
        .map(|h| h.value.as_str().to_string());
    if !host.as_deref().is_some_and(|h| host_allowed(h, port)) {
        return plain(
            request,
            403,
            &format!(
                "403 Forbidden: relance watch answers only requests for localhost:{port}, 127.0.0.1:{port} or [::1]:{port}"
            ),
        );
    }
    if !matches!(request.method(), Method::Get | Method::Head) {
        return plain(
            request,
            405,
            "405 Method Not Allowed: the preview server only reads",
        );
    }
    match resolve(request.url()) {
        Target::Forbidden => plain(request, 403, "403 Forbidden: not a path of the previews"),
        Target::Root => send(
            request,
            302,
            "text/plain; charset=utf-8",
            b"see /preview/index.html\n".to_vec(),
            &[("Location", "/preview/index.html")],
        ),
        Target::Reserved(what) => match what.as_str() {
            "live.js" => send(
                request,
                200,
                content_type("live.js"),
                LIVE_JS.as_bytes().to_vec(),
                &[],
            ),
            "status" => {
                let (_, _, status) = shared.snapshot();
                send(
                    request,
                    200,
                    content_type("status.json"),
                    status.as_bytes().to_vec(),
                    &[],
                )
            }
            "events" => {
                if clients.fetch_add(1, Ordering::SeqCst) >= MAX_EVENT_CLIENTS {
                    clients.fetch_sub(1, Ordering::SeqCst);
                    return plain(request, 503, "503: too many open preview pages");
                }
                let (shared, counter) = (shared.clone(), clients.clone());
                let spawned = std::thread::Builder::new()
                    .name("relance-events".into())
                    .spawn(move || {
                        events(request, &shared);
                        counter.fetch_sub(1, Ordering::SeqCst);
                    });
                if spawned.is_err() {
                    // The request went with the closure (the page retries).
                    clients.fetch_sub(1, Ordering::SeqCst);
                }
            }
            _ => plain(request, 404, "404 Not Found"),
        },
        Target::File(key) => {
            let (site_generation, site, _) = shared.snapshot();
            let site_header = site_generation.to_string();
            match site.get(&key) {
                Some(bytes) => {
                    let ty = content_type(&key);
                    let body = if ty.starts_with("text/html") {
                        with_live_script(bytes, site_generation)
                    } else {
                        bytes.as_ref().clone()
                    };
                    send(request, 200, ty, body, &[("X-Relance-Site", &site_header)])
                }
                None if site.contains(&format!("{key}/index.html")) => {
                    let to = format!("/{key}/");
                    send(
                        request,
                        302,
                        "text/plain; charset=utf-8",
                        format!("see {to}\n").into_bytes(),
                        &[("Location", &to)],
                    )
                }
                None => {
                    let page = not_found_page(&key, site.is_empty());
                    send(
                        request,
                        404,
                        content_type("x.html"),
                        with_live_script(page.as_bytes(), site_generation),
                        &[("X-Relance-Site", &site_header)],
                    )
                }
            }
        }
    }
}

/// An HTML page with the live-reload script added before `</body>`.
fn with_live_script(html: &[u8], site_generation: u64) -> Vec<u8> {
    let tag = format!(
        "<script src=\"{RESERVED}live.js\" data-relance-site=\"{site_generation}\"></script>\n"
    );
    let at = find_last_ci(html, b"</body>").unwrap_or(html.len());
    let mut out = Vec::with_capacity(html.len() + tag.len());
    out.extend_from_slice(&html[..at]);
    out.extend_from_slice(tag.as_bytes());
    out.extend_from_slice(&html[at..]);
    out
}

fn find_last_ci(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    (0..=haystack.len().checked_sub(needle.len())?)
        .rev()
        .find(|&i| haystack[i..i + needle.len()].eq_ignore_ascii_case(needle))
}

fn not_found_page(key: &str, empty: bool) -> String {
    let what = if empty {
        "There are no previews yet: the project has not built without errors so far. Fix the errors shown on this page; it updates by itself."
    } else {
        "Nothing is here: the template or persona may have been renamed or removed."
    };
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Not found</title>\n</head>\n<body style=\"font-family:system-ui,sans-serif;margin:2em\">\n<h1>Not found</h1>\n<p><code>/{}</code></p>\n<p>{what}</p>\n<p><a href=\"/preview/index.html\">All previews</a></p>\n</body>\n</html>\n",
        crate::render::escape_html(key)
    )
}

/// A server-sent event stream: the current status at once, then one
/// `build` event per build, until the page goes away.
fn events(request: Request, shared: &Shared) {
    let mut w = request.into_writer();
    let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n";
    // `retry`: how soon the browser reconnects when the server restarts.
    if w.write_all(head.as_bytes()).is_err() || w.write_all(b"retry: 500\n\n").is_err() {
        return;
    }
    let mut seen = u64::MAX;
    loop {
        let (generation, status) = if seen == u64::MAX {
            // The build and its status read together, under one lock.
            let live = shared.lock();
            (live.generation, live.status.clone())
        } else {
            shared.wait_newer(seen, KEEP_ALIVE)
        };
        let message = if generation == seen {
            ": keep-alive\n\n".to_string()
        } else {
            format!("event: build\ndata: {status}\n\n")
        };
        if w.write_all(message.as_bytes()).is_err() || w.flush().is_err() {
            return;
        }
        seen = generation;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_hosts_with_the_port() {
        for ok in [
            "localhost:4000",
            "LOCALHOST:4000",
            "127.0.0.1:4000",
            "[::1]:4000",
        ] {
            assert!(host_allowed(ok, 4000), "{ok}");
        }
        for bad in [
            "evil.com:4000",
            "localhost",
            "localhost:4001",
            "127.0.0.1",
            "127.0.0.2:4000",
            "localhost.evil.com:4000",
            "[::1]",
            "",
            "0.0.0.0:4000",
        ] {
            assert!(!host_allowed(bad, 4000), "{bad}");
        }
    }

    #[test]
    fn traversal_is_refused_before_any_lookup() {
        for bad in [
            "/../Cargo.toml",
            "/preview/../../etc/passwd",
            "/%2e%2e/Cargo.toml",
            "/%2E%2E/x",
            "/..%2fCargo.toml",
            "/..%2FCargo.toml",
            "/..\\Cargo.toml",
            "/..%5cCargo.toml",
            "/preview/%5c..%5c..%5cx",
            "/preview/./index.html",
            "/a%00b",
            "/%",
            "/%zz",
            "/%c0%ae%c0%ae/x",
            "http://evil.com/preview/index.html",
            "*",
            "",
        ] {
            assert_eq!(resolve(bad), Target::Forbidden, "{bad}");
        }
    }

    #[test]
    fn paths_map_to_build_output() {
        assert_eq!(resolve("/"), Target::Root);
        assert_eq!(resolve("/?x=1"), Target::Root);
        assert_eq!(
            resolve("/preview/index.html?t=1#top"),
            Target::File("preview/index.html".into())
        );
        assert_eq!(
            resolve("/preview/"),
            Target::File("preview/index.html".into())
        );
        assert_eq!(
            resolve("/preview/wel%63ome/marie.html"),
            Target::File("preview/welcome/marie.html".into())
        );
        // Decoded once: a double-encoded dot stays a literal `%2e`.
        assert_eq!(resolve("/%252e%252e/x"), Target::File("%2e%2e/x".into()));
        assert_eq!(
            resolve("/__relance/status"),
            Target::Reserved("status".into())
        );
    }

    #[test]
    fn the_script_goes_before_the_last_body_end() {
        let out = with_live_script(b"<p>a</p></BODY></html>", 7);
        let out = String::from_utf8(out).unwrap();
        assert!(
            out.starts_with("<p>a</p><script src=\"/__relance/live.js\" data-relance-site=\"7\">")
        );
        assert!(out.ends_with("</BODY></html>"));
        let bare = String::from_utf8(with_live_script(b"text", 1)).unwrap();
        assert!(bare.starts_with("text<script"));
    }
}
