"""The test mailbox of tests/deliver_email.rs: a real SMTP server that is not
ours (PyPI's aiosmtpd), and Python's own MIME parser to read what it got.

    python mailbox.py serve FOLDER [PORT]  # prints the port, serves until stdin closes
    python mailbox.py parse FILE     # prints a JSON summary of one message

`serve` listens on 127.0.0.1 on a free port and writes each message it
accepts as FOLDER/NNNN.json (the envelope) then FOLDER/NNNN.eml (the bytes
received, written last, so a reader that sees the .eml sees both). A
recipient whose local part starts with `reject` gets `550` at RCPT, one that
starts with `later` gets `451`: the answers relance must classify.

`parse` reads a message with `email` (policy `default`: RFC 2047 headers
decoded, MIME parts and their transfer encodings decoded) and prints its
headers, its content type and each leaf part's type, charset and text.
"""

import json
import os
import socket
import sys


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Handler:
    def __init__(self, folder):
        self.folder = folder
        self.count = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@")[0]
        if local.startswith("reject"):
            return "550 5.1.1 No such user here"
        if local.startswith("later"):
            return "451 4.3.0 Mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        base = os.path.join(self.folder, "%04d" % self.count)
        with open(base + ".json", "w") as f:
            json.dump({"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos}, f)
        data = envelope.original_content or envelope.content
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        with open(base + ".tmp", "wb") as f:
            f.write(data)
        os.replace(base + ".tmp", base + ".eml")
        return "250 Message accepted for delivery"


def serve(folder, port=None):
    from aiosmtpd.controller import Controller

    os.makedirs(folder, exist_ok=True)
    port = int(port) if port else free_port()
    controller = Controller(Handler(folder), hostname="127.0.0.1", port=port)
    controller.start()
    print(port, flush=True)
    try:
        sys.stdin.read()
    finally:
        controller.stop()


def parse(path):
    import email
    import email.policy

    with open(path, "rb") as f:
        msg = email.message_from_bytes(f.read(), policy=email.policy.default)
    headers = {}
    for name in ["From", "To", "Reply-To", "Subject", "Date", "Message-ID",
                 "MIME-Version", "List-Unsubscribe", "List-Unsubscribe-Post"]:
        values = msg.get_all(name)
        if values is not None:
            headers[name] = [str(v) for v in values]
    parts = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        parts.append({
            "type": part.get_content_type(),
            "charset": part.get_content_charset(),
            "text": part.get_content(),
        })
    defects = [type(d).__name__ for d in msg.defects]
    for part in msg.walk():
        defects += [type(d).__name__ for d in part.defects]
    out = {
        "content_type": msg.get_content_type(),
        "headers": headers,
        "parts": parts,
        "defects": defects,
        "date_epoch": None,
    }
    if msg["Date"] is not None:
        out["date_epoch"] = int(msg["Date"].datetime.timestamp())
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    if len(sys.argv) in (3, 4) and sys.argv[1] == "serve":
        serve(*sys.argv[2:])
    elif len(sys.argv) == 3 and sys.argv[1] == "parse":
        parse(sys.argv[2])
    else:
        sys.exit("usage: mailbox.py serve FOLDER [PORT] | parse FILE")
