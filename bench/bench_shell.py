"""The HTTP shell's own cost: the CPU of one request to the two hot operations (POST /api/v1/dossiers, POST
/api/v1/tasks/{id}/complete) through `api.create_app()`'s WSGI callable, with the engine's use cases replaced
by the answers they gave to the same requests a moment before, against the CPU of those use cases themselves
measured in the same run. So it reads what stands between a request and the engine (Flask's request
context, the hooks, authentication and authorization, webargs' parsing, the idempotency wrapper, the dump
and the JSON answer, the security headers), without a server, a socket or the engine.

Each figure is the minimum over many short repeats of the thread's CPU time (time.thread_time), which moves
little with the machine's load, unlike wall-clock rates. The access log is off (MOTCUA_ACCESS_LOG=0; it
writes a line to stderr).

    .venv/bin/python bench/bench_shell.py [REPEATS=40] [NUMBER=40]
"""

from __future__ import annotations

import io
import json
import os
import sys
import tempfile
import time
import timeit
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from bench_api import PASSWORD, STEP_DATA, USER, prepare  # noqa: E402

NEW = {"procedure_code": "9.000001", "applicant": {"name": "Nguyễn Văn A"}, "channel": 1}


def environ(path: str, body: dict, headers: dict) -> dict:
    data = json.dumps(body).encode()
    env = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8080",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(data),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(data)),
        "HTTP_HOST": "127.0.0.1:8080",
        "HTTP_ACCEPT": "application/json",
        "HTTP_CONNECTION": "keep-alive",
    }
    for name, value in headers.items():
        env["HTTP_" + name.upper().replace("-", "_")] = value
    return env


def main() -> None:
    argv = [a for a in sys.argv[1:] if not a.startswith("--")]
    repeats = int(argv[0]) if argv else 40
    number = int(argv[1]) if len(argv) > 1 else 40
    os.environ["MOTCUA_ACCESS_LOG"] = "0"
    tmp = Path(tempfile.mkdtemp(prefix="motcua-bench-shell-"))
    os.environ.update(prepare(tmp))

    from api import create_app
    from engine.auth import load_actor

    app = create_app()
    service = app.extensions["motcua"].dossiers

    def call(path: str, body: dict, headers: dict | None = None) -> tuple[int, bytes]:
        out: list[int] = []
        chunks = app.wsgi_app(
            environ(path, body, headers or {}), lambda status, _h, _e=None: out.append(int(status[:3]))
        )
        try:
            return out[0], b"".join(chunks)
        finally:
            getattr(chunks, "close", lambda: None)()

    status, raw = call("/api/v1/auth/token", {"username": USER, "password": PASSWORD})
    auth = {"Authorization": "Bearer " + json.loads(raw)["access_token"]}
    with service.db.read() as s:
        actor = load_actor(s, USER, 0)

    def cpu(func) -> float:
        func()
        return min(timeit.repeat(func, number=number, repeat=repeats, timer=time.thread_time)) / number

    # the engine alone, the same use cases the requests below make: starts, then first steps completed
    todo: list[str] = []

    def engine_start():
        todo.append(service.start_dossier(actor, "9.000001", NEW["applicant"], 1, {})["tasks"][0]["id"])

    def engine_complete():
        service.complete_task(actor, todo.pop(), dict(STEP_DATA))

    starts = cpu(engine_start)
    while len(todo) < repeats * number + 1:
        engine_start()
    engine = {"start": starts, "complete": cpu(engine_complete)}

    # the answers the engine gave, then the shell around them
    status, raw = call("/api/v1/dossiers", NEW, auth)
    assert status == 201, raw
    started = json.loads(raw)
    task_id = started["tasks"][0]["id"]
    status, raw = call(f"/api/v1/tasks/{task_id}/complete", {"data": STEP_DATA}, auth)
    assert status == 200, raw
    completed = json.loads(raw)
    service.start_dossier = lambda *a, **k: started
    service.complete_task = lambda *a, **k: completed
    service.authorize_task = lambda *a, **k: None  # the engine's check (a dict lookup for a step it opened)

    def shell(path: str, body: dict, expect: int):
        def run():
            status, raw = call(path, body, auth)
            assert status == expect, raw

        return run

    http = {
        "start": cpu(shell("/api/v1/dossiers", NEW, 201)),
        "complete": cpu(shell(f"/api/v1/tasks/{task_id}/complete", {"data": STEP_DATA}, 200)),
    }
    print(f"CPU per request, min of {repeats} x {number} (thread time); load average {os.getloadavg()[0]:.1f}")
    for name, what in (("start", "POST /api/v1/dossiers"), ("complete", "POST /api/v1/tasks/{id}/complete")):
        print(
            f"{what:34s} shell {http[name] * 1e6:6.0f} us, engine {engine[name] * 1e6:6.0f} us: "
            f"the shell is {http[name] / engine[name]:.2f}x the engine's use case"
        )


if __name__ == "__main__":
    main()
