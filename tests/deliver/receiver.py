#!/usr/bin/env python3
"""A plain HTTP receiver for the delivery tests (webhooks, tasks, SMS, push).

Python's standard library only. It listens on 127.0.0.1, prints its port
alone on the first line of stdout (then flushes), and appends one JSON line
per request it receives to the log file:

    {"n": 1, "method": "POST", "path": "/hook?a=1",
     "headers": {"content-type": "application/json", ...},   # names lower-cased
     "body": "...",            # the body decoded as UTF-8 (invalid bytes replaced)
     "body_base64": "...",     # the exact bytes
     "answer": 200}            # the status it answers, or "hang"

A line is written (and flushed) when the request has been read, before the
answer, so a request that hangs is recorded too. `n` counts requests from 1.

Options:
    --log FILE          where the JSON lines go (required)
    --port N            port to listen on (default 0: a free port)
    --status CODE       the normal answer (default 200)
    --fail WHAT         the answer to the first --times requests:
                        a status code (500, 429, 404, ...) or `hang`
    --times N           how many requests get --fail (default 1)
    --hang-seconds S    how long a `hang` waits before answering 504
                        (default 30: longer than the client's timeout)
    --max-seconds S     exit by itself after S seconds (default 600), so a
                        crashed test never leaves it running

Control path (not recorded): `POST /_control` with a JSON object of the
same settings, e.g. {"fail": "500", "times": 2}, {"fail": null},
{"status": 202}, {"hang_seconds": 5}; it also resets the count of requests
that --fail applies to (not `n`). Answers 200 with the settings in force.
`GET /_requests` answers the log so far as JSON lines.

Answers carry `Content-Type: application/json` and a short JSON body:
{"ok": true} for 2xx, {"error": "injected 500"} otherwise.
Stop it with SIGTERM or SIGINT (a hang in progress ends at once).
"""

import argparse
import base64
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class State:
    def __init__(self, args):
        self.lock = threading.Lock()
        self.log_path = args.log
        self.log = open(args.log, "a", encoding="utf-8")
        self.status = args.status
        self.fail = args.fail
        self.times = args.times
        self.hang_seconds = args.hang_seconds
        self.seen = 0  # requests counted against --fail / --times
        self.n = 0  # every recorded request
        self.stop = threading.Event()

    def settings(self):
        return {
            "status": self.status,
            "fail": self.fail,
            "times": self.times,
            "hang_seconds": self.hang_seconds,
        }


def parse_fail(value):
    if value is None or value == "hang":
        return value
    code = int(value)
    if not 100 <= code <= 599:
        raise ValueError(f"not an HTTP status: {value}")
    return str(code)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "relance-test-receiver"

    def log_message(self, format, *args):  # quiet
        pass

    def read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(length) if length else b""

    def reply(self, status, payload, content_type="application/json"):
        body = payload.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def control(self, body):
        st = self.server.state
        try:
            new = json.loads(body or b"{}")
            with st.lock:
                if "status" in new:
                    st.status = int(new["status"])
                if "fail" in new:
                    st.fail = parse_fail(None if new["fail"] is None else str(new["fail"]))
                if "times" in new:
                    st.times = int(new["times"])
                if "hang_seconds" in new:
                    st.hang_seconds = float(new["hang_seconds"])
                st.seen = 0
                settings = st.settings()
        except (ValueError, TypeError, AttributeError) as e:
            self.reply(400, json.dumps({"error": str(e)}))
            return
        self.reply(200, json.dumps(settings))

    def handle_any(self):
        st = self.server.state
        body = self.read_body()
        if self.path == "/_control" and self.command == "POST":
            self.control(body)
            return
        if self.path == "/_requests" and self.command == "GET":
            with st.lock:
                st.log.flush()
                with open(st.log_path, encoding="utf-8") as f:
                    text = f.read()
            self.reply(200, text, "application/x-ndjson")
            return
        with st.lock:
            st.n += 1
            st.seen += 1
            answer = st.status
            if st.fail is not None and st.seen <= st.times:
                answer = "hang" if st.fail == "hang" else int(st.fail)
            hang = st.hang_seconds
            record = {
                "n": st.n,
                "method": self.command,
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body.decode("utf-8", errors="replace"),
                "body_base64": base64.b64encode(body).decode("ascii"),
                "answer": answer,
            }
            st.log.write(json.dumps(record, ensure_ascii=False) + "\n")
            st.log.flush()
        if answer == "hang":
            if st.stop.wait(hang):
                return
            answer = 504
        if 200 <= answer <= 299:
            self.reply(answer, json.dumps({"ok": True}))
        else:
            self.reply(answer, json.dumps({"error": f"injected {answer}"}))

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--log", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--status", type=int, default=200)
    p.add_argument("--fail", type=parse_fail, default=None)
    p.add_argument("--times", type=int, default=1)
    p.add_argument("--hang-seconds", type=float, default=30.0)
    p.add_argument("--max-seconds", type=float, default=600.0)
    args = p.parse_args()

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.state = State(args)
    print(server.server_address[1], flush=True)

    import signal

    def stop(*_):
        server.state.stop.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    timer = threading.Timer(args.max_seconds, stop)
    timer.daemon = True
    timer.start()
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.state.stop.set()
        server.server_close()
        server.state.log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
