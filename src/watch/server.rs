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
//!
//! Threads: one accepts connections, a fixed pool of [`WORKERS`] reads one
//! request per connection and answers it (`Connection: close`), and one
//! broadcaster holds every event stream. A page's event stream costs a
//! socket, not a thread: the broadcaster writes each build to every stream
//! without blocking (a stream that cannot take more keeps its bytes until
//! it can, up to [`MAX_PENDING`]), sends a comment every [`KEEP_ALIVE`],
//! and drops a stream as soon as its page has closed it (it looks every
//! [`TICK`]) or a write fails. So pages always load, however many tabs
//! listen, and a closed tab frees its place at once.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::build::Site;

/// The script every HTML page gets: live reload and the error overlay.
pub const LIVE_JS: &str = include_str!("live.js");

/// URLs under this prefix belong to the server, not to the build output.
pub const RESERVED: &str = "/__relance/";

/// At most this many pages listen for rebuilds at once (a socket each,
/// no thread); more get a 503 until some close.
pub const MAX_EVENT_CLIENTS: usize = 256;
/// An idle event stream gets a comment this often, so that a connection
/// that died without closing (a sleeping laptop) is noticed.
const KEEP_ALIVE: Duration = Duration::from_secs(10);
/// How often the broadcaster looks for closed streams and retries writes.
const TICK: Duration = Duration::from_millis(250);
/// A stream whose page does not read keeps at most this much unsent.
const MAX_PENDING: usize = 8 << 20;
/// Threads answering requests (one request per connection each).
const WORKERS: usize = 16;
/// Accepted connections waiting for a worker; beyond, the kernel's queue.
const QUEUE: usize = 1024;
/// A request's head (request line and headers) is at most this long.
const MAX_HEAD: usize = 16 * 1024;
/// A client has this long to send its request head.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// A response must be taken in this long.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

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

    fn current(&self) -> (u64, Arc<String>) {
        let live = self.lock();
        (live.generation, live.status.clone())
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
    /// until the process ends.
    pub fn start(port: u16, shared: Arc<Shared>) -> Result<Server, BindError> {
        let listener = TcpListener::bind(("127.0.0.1", port)).map_err(|e| {
            if e.kind() == ErrorKind::AddrInUse {
                BindError::InUse(port)
            } else {
                BindError::Other(e.to_string())
            }
        })?;
        let port = listener
            .local_addr()
            .map(|a: SocketAddr| a.port())
            .map_err(|e| BindError::Other(e.to_string()))?;
        let streams = Arc::new(Streams::default());
        {
            let (shared, streams) = (shared.clone(), streams.clone());
            spawn("relance-events", move || broadcast(&shared, &streams))?;
        }
        let (tx, rx): (SyncSender<TcpStream>, Receiver<TcpStream>) = sync_channel(QUEUE);
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..WORKERS {
            let (rx, shared, streams) = (rx.clone(), shared.clone(), streams.clone());
            spawn("relance-http", move || {
                loop {
                    let next = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                    let Ok(stream) = next else { return };
                    connection(stream, port, &shared, &streams);
                }
            })?;
        }
        spawn("relance-accept", move || {
            for stream in listener.incoming() {
                match stream {
                    Ok(s) => {
                        if tx.send(s).is_err() {
                            return;
                        }
                    }
                    // Out of file descriptors, a connection reset before
                    // it was taken: keep accepting.
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        })?;
        Ok(Server { port })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<(), BindError> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map(|_| ())
        .map_err(|e| BindError::Other(format!("cannot start a thread: {e}")))
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

/// What a request gets.
enum Reply {
    Full {
        status: u16,
        content_type: &'static str,
        body: Vec<u8>,
        extra: Vec<(&'static str, String)>,
    },
    /// An event stream, handed to the broadcaster.
    Events,
}

fn full(status: u16, content_type: &'static str, body: Vec<u8>) -> Reply {
    Reply::Full {
        status,
        content_type,
        body,
        extra: Vec::new(),
    }
}

fn plain(status: u16, text: &str) -> Reply {
    full(
        status,
        "text/plain; charset=utf-8",
        format!("{text}\n").into_bytes(),
    )
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        302 => "Found",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// A request's method, target and `Host`, from its head.
struct Head {
    method: String,
    target: String,
    host: Option<String>,
}

/// Reads a request head (up to the blank line). `Err(status)`: what to
/// answer instead; `Ok(None)`: the client went away.
fn read_head(stream: &mut TcpStream) -> Result<Option<Head>, u16> {
    let mut raw = Vec::with_capacity(1024);
    let mut buf = [0u8; 2048];
    let end = loop {
        if let Some(at) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        if raw.len() > MAX_HEAD {
            return Err(431);
        }
        match stream.read(&mut buf) {
            Ok(0) => return if raw.is_empty() { Ok(None) } else { Err(400) },
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return Ok(None),
        }
    };
    let Ok(text) = std::str::from_utf8(&raw[..end]) else {
        return Err(400);
    };
    let mut lines = text.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let (Some(method), Some(target), Some(version)) = (first.next(), first.next(), first.next())
    else {
        return Err(400);
    };
    if !version.starts_with("HTTP/1.") || first.next().is_some() {
        return Err(400);
    }
    let mut host = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(400);
        };
        // A header name is one token (no spaces, no folded lines).
        if name.is_empty() || name.contains(|c: char| c.is_ascii_whitespace() || c.is_control()) {
            return Err(400);
        }
        if name.eq_ignore_ascii_case("host") {
            if host.is_some() {
                // Two `Host` headers: which one the browser meant is unclear.
                return Err(400);
            }
            host = Some(value.trim().to_string());
        }
    }
    Ok(Some(Head {
        method: method.to_string(),
        target: target.to_string(),
        host,
    }))
}

/// Answers one connection: one request, then close (event streams go to
/// the broadcaster).
fn connection(mut stream: TcpStream, port: u16, shared: &Arc<Shared>, streams: &Arc<Streams>) {
    let _ = stream.set_read_timeout(Some(READ_TIMEOUT));
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let _ = stream.set_nodelay(true);
    let (head, reply) = match read_head(&mut stream) {
        Ok(None) => return,
        Ok(Some(head)) => {
            let reply = handle(&head, port, shared);
            (Some(head), reply)
        }
        Err(status) => (None, plain(status, &format!("{status} {}", reason(status)))),
    };
    match reply {
        Reply::Events => streams.join(stream, shared),
        Reply::Full {
            status,
            content_type,
            body,
            extra,
        } => {
            let mut out = format!(
                "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\nConnection: close\r\n",
                reason(status),
                body.len()
            );
            for (k, v) in &extra {
                out.push_str(&format!("{k}: {v}\r\n"));
            }
            out.push_str("\r\n");
            let mut bytes = out.into_bytes();
            if head.as_ref().is_none_or(|h| h.method != "HEAD") {
                bytes.extend_from_slice(&body);
            }
            // The client may have gone; nothing to do about it.
            let _ = stream.write_all(&bytes).and_then(|_| stream.flush());
            let _ = stream.shutdown(Shutdown::Write);
            // Let the client read the answer before the socket closes
            // (closing with unread request bytes would reset it).
            let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
            let _ = stream.read(&mut [0u8; 512]);
        }
    }
}

fn handle(request: &Head, port: u16, shared: &Arc<Shared>) -> Reply {
    if !request
        .host
        .as_deref()
        .is_some_and(|h| host_allowed(h, port))
    {
        return plain(
            403,
            &format!(
                "403 Forbidden: relance watch answers only requests for localhost:{port}, 127.0.0.1:{port} or [::1]:{port}"
            ),
        );
    }
    if request.method != "GET" && request.method != "HEAD" {
        return plain(405, "405 Method Not Allowed: the preview server only reads");
    }
    match resolve(&request.target) {
        Target::Forbidden => plain(403, "403 Forbidden: not a path of the previews"),
        Target::Root => Reply::Full {
            status: 302,
            content_type: "text/plain; charset=utf-8",
            body: b"see /preview/index.html\n".to_vec(),
            extra: vec![("Location", "/preview/index.html".to_string())],
        },
        Target::Reserved(what) => match what.as_str() {
            "live.js" => full(200, content_type("live.js"), LIVE_JS.as_bytes().to_vec()),
            "status" => {
                let (_, _, status) = shared.snapshot();
                full(200, content_type("status.json"), status.as_bytes().to_vec())
            }
            "events" if request.method == "GET" => Reply::Events,
            _ => plain(404, "404 Not Found"),
        },
        Target::File(key) => {
            let (site_generation, site, _) = shared.snapshot();
            let site_header = ("X-Relance-Site", site_generation.to_string());
            match site.get(&key) {
                Some(bytes) => {
                    let ty = content_type(&key);
                    let body = if ty.starts_with("text/html") {
                        with_live_script(bytes, site_generation)
                    } else {
                        bytes.as_ref().clone()
                    };
                    Reply::Full {
                        status: 200,
                        content_type: ty,
                        body,
                        extra: vec![site_header],
                    }
                }
                None if site.contains(&format!("{key}/index.html")) => {
                    let to = format!("/{key}/");
                    Reply::Full {
                        status: 302,
                        content_type: "text/plain; charset=utf-8",
                        body: format!("see {to}\n").into_bytes(),
                        extra: vec![("Location", to)],
                    }
                }
                None => {
                    let page = not_found_page(&key, site.is_empty());
                    Reply::Full {
                        status: 404,
                        content_type: content_type("x.html"),
                        body: with_live_script(page.as_bytes(), site_generation),
                        extra: vec![site_header],
                    }
                }
            }
        }
    }
}

/// One page's event stream, held by the broadcaster.
struct Stream {
    socket: TcpStream,
    /// Bytes written to it but not yet taken by the socket.
    pending: Vec<u8>,
    /// The build generation it was last told about.
    seen: u64,
    /// When something was last queued for it.
    last: Instant,
}

impl Stream {
    /// Writes what is pending without blocking. `false`: the stream is
    /// dead (closed, reset, or too far behind).
    fn flush(&mut self) -> bool {
        while !self.pending.is_empty() {
            match self.socket.write(&self.pending) {
                Ok(0) => return false,
                Ok(n) => {
                    self.pending.drain(..n);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        self.pending.len() <= MAX_PENDING
    }

    /// Whether the page closed its end: a read without blocking sees the
    /// end of the stream (a page sends nothing after its request).
    fn closed(&mut self) -> bool {
        let mut buf = [0u8; 512];
        loop {
            match self.socket.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return true,
            }
        }
    }

    fn queue(&mut self, text: &str) {
        self.pending.extend_from_slice(text.as_bytes());
        self.last = Instant::now();
    }
}

/// The open event streams.
#[derive(Default)]
struct Streams {
    /// Streams accepted by workers, not yet taken by the broadcaster.
    joining: Mutex<Vec<Stream>>,
    /// How many streams are open (joining or held).
    open: std::sync::atomic::AtomicUsize,
}

impl Streams {
    /// Starts an event stream on `socket`: the response head and the
    /// current status at once, then the broadcaster's. A 503 when
    /// [`MAX_EVENT_CLIENTS`] are open.
    fn join(&self, mut socket: TcpStream, shared: &Shared) {
        use std::sync::atomic::Ordering;
        if self.open.fetch_add(1, Ordering::SeqCst) >= MAX_EVENT_CLIENTS {
            self.open.fetch_sub(1, Ordering::SeqCst);
            let body = "503: too many open preview pages; close some tabs\n";
            let _ = write!(
                socket,
                "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nRetry-After: 2\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            return;
        }
        let (generation, status) = shared.current();
        let mut stream = Stream {
            socket,
            pending: Vec::new(),
            seen: generation,
            last: Instant::now(),
        };
        // `retry`: how soon the browser reconnects when the server restarts.
        stream.queue("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\nretry: 500\n\n");
        stream.queue(&format!("event: build\ndata: {status}\n\n"));
        if stream.socket.set_nonblocking(true).is_err() || !stream.flush() {
            self.open.fetch_sub(1, Ordering::SeqCst);
            return;
        }
        self.joining
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(stream);
    }
}

/// The broadcaster: every build to every stream, keep-alive comments, and
/// closed streams dropped.
fn broadcast(shared: &Shared, streams: &Streams) {
    use std::sync::atomic::Ordering;
    let mut held: Vec<Stream> = Vec::new();
    let (mut generation, mut status) = shared.current();
    loop {
        held.append(&mut streams.joining.lock().unwrap_or_else(|e| e.into_inner()));
        let before = held.len();
        held.retain_mut(|s| {
            if s.seen < generation {
                s.queue(&format!("event: build\ndata: {status}\n\n"));
                s.seen = generation;
            } else if s.last.elapsed() >= KEEP_ALIVE {
                s.queue(": keep-alive\n\n");
            }
            s.flush() && !s.closed()
        });
        let dropped = before - held.len();
        if dropped > 0 {
            streams.open.fetch_sub(dropped, Ordering::SeqCst);
        }
        (generation, status) = shared.wait_newer(generation, TICK);
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
