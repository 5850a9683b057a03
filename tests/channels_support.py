"""Real servers for the channel tests: an HTTP gateway on 127.0.0.1 (any JSON API: SMS, Zalo, national portal,
reporting) and an SMTP server (aiosmtpd). They record what arrives; nothing in motcua is replaced."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from aiosmtpd.controller import Controller


class Gateway:
    """A threaded HTTP server answering every POST with `status` (after `delay` seconds) and `answer`.

    `status` may be a callable taking the request number (1, 2, …) for gateways that fail then recover."""

    def __init__(self, status=200, delay: float = 0.0, answer=None):
        self.status, self.delay, self.answer = status, delay, answer if answer is not None else {"ok": True}
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body leave at once (no 40 ms delayed-ACK stalls)

            def do_POST(self):  # noqa: N802 - the stdlib's name
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                with gateway.lock:
                    n = len(gateway.requests) + 1
                    status = gateway.status(n) if callable(gateway.status) else gateway.status
                    if len(raw) < length:  # the client went away mid-request (a killed worker): not accepted
                        status = 400
                    entry = {"n": n, "path": self.path, "headers": dict(self.headers), "raw": raw, "status": status}
                    try:
                        entry["json"] = json.loads(raw)
                    except ValueError:
                        entry["json"] = None
                    gateway.requests.append(entry)
                if gateway.delay:
                    time.sleep(gateway.delay)  # the gateway is slow: this is the server's behaviour
                body = json.dumps(gateway.answer).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/send"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def bodies(self, status=None) -> list:
        with self.lock:
            return [r["json"] for r in self.requests if status is None or r["status"] == status]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Collect:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        self.messages.append(
            {
                "from": envelope.mail_from,
                "to": list(envelope.rcpt_tos),
                "message": message_from_bytes(envelope.original_content or envelope.content, policy=policy.default),
            }
        )
        return "250 OK"


class SmtpServer:
    def __init__(self):
        self.handler = _Collect()
        self.port = free_port()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self.controller.start()
        self.url = f"smtp://127.0.0.1:{self.port}"

    @property
    def messages(self):
        return self.handler.messages

    def close(self):
        self.controller.stop()


def wait_for(predicate, timeout: float = 20.0, every: float = 0.05):
    """Poll a real process's effect (a server receiving something) until it holds or `timeout` passes."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    return predicate()


def stop(proc: subprocess.Popen, timeout: float = 30.0) -> None:
    """Stop a server started in a session of its own: SIGTERM, then SIGKILL to its process group after `timeout`."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def descendants(pid: int) -> list[int]:
    """The living descendants of process `pid` (Linux /proc): the processes a server under test started."""
    parents: dict[int, int] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                parents[int(d.name)] = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in parents.items() if pp == p]
        out.extend(kids)
        todo.extend(kids)
    return out
