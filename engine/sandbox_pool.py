"""A small pool of worker processes that run analysts' code under an operating-system ceiling.

The sandbox's budget (engine/expressions.py) counts steps, items and text before building anything; this
pool is the backstop for whatever the budget might miss. Each worker is a separate Python process that
limits itself, once started, to `MEMORY_HEADROOM` bytes of address space above what its imports use
(RLIMIT_AS) and, before each job, to `CPU_SECONDS` more seconds of CPU time (RLIMIT_CPU: the kernel kills
it past that). The caller waits at most `timeout` seconds of wall-clock time, then kills the worker.
A killed or dead worker is replaced in the background; the job gets `WorkerFailed` and the request a 422.
Only the evaluation runs there: a runaway job slows neither the caller's process (its other requests,
`/healthz`) nor the other workers. See docs/security.md ("Expressions").

The pool knows nothing of expressions: a worker runs `handler(job)` for the handler named when the pool
was made (`"package.module:function"`, imported in the worker), so this module imports no other module
of engine/. Jobs go to the worker pickled (the parent is trusted); replies come back through an
unpickler that builds plain data only (lists, dicts, text, numbers, dates, UUIDs), never an object of
another class, whatever a worker might send.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import io
import os
import pickle
import queue
import resource
import signal
import socket
import subprocess
import sys
import threading
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

__all__ = ["WorkerFailed", "WorkerPool", "CPU_SECONDS", "MEMORY_HEADROOM"]

CPU_SECONDS = 2  # CPU time one job may use (RLIMIT_CPU is counted in whole seconds)
MEMORY_HEADROOM = 256 * 1024 * 1024  # address space a worker may add to what its imports use
START_TIMEOUT = 30.0  # seconds to wait for a free worker before giving up
ROOT = Path(__file__).resolve().parent.parent  # the folder `engine` is in: the worker imports from there


class WorkerFailed(Exception):
    """The job did not finish: `reason` is 'time' (killed: too long) or 'memory' (died: too large)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# -- the parent's side ------------------------------------------------------------------------------------------


class _Worker:
    def __init__(self, handler: str):
        parent, child = socket.socketpair()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", __name__, str(child.fileno()), handler],
            pass_fds=(child.fileno(),),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            env=env,
            cwd=str(ROOT),
        )
        child.close()
        self.conn = Connection(parent.detach())

    def ready(self, timeout: float) -> bool:
        """Wait for the worker's hello (sent once its imports are done and its limits are set)."""
        return self.conn.poll(timeout) and self.conn.recv_bytes() == b"ready"

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self.proc.kill()
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            self.proc.wait(5)
        with contextlib.suppress(OSError):
            self.conn.close()


class WorkerPool:
    """`size` worker processes, started on first use; `run(job, timeout)` returns the handler's result."""

    def __init__(self, handler: str, size: int | None = None):
        self.handler = handler
        self.size = size or int(os.environ.get("MOTCUA_SANDBOX_WORKERS", "2"))
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._lock = threading.Lock()
        self._alive = 0
        self._pid = os.getpid()
        atexit.register(self.close)

    def _start(self) -> None:
        try:
            worker = _Worker(self.handler)
            if not worker.ready(START_TIMEOUT):
                worker.kill()
                raise RuntimeError("sandbox worker did not start")
        except BaseException:
            with self._lock:
                self._alive -= 1
            raise
        self._idle.put(worker)

    def _take(self) -> _Worker:
        if os.getpid() != self._pid:  # forked (e.g. by a server's pre-fork model): this process's own workers
            self._idle, self._alive, self._pid = queue.Queue(), 0, os.getpid()
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            spawn = self._alive < self.size
            if spawn:
                self._alive += 1
        if spawn:
            self._start()
        try:
            return self._idle.get(timeout=START_TIMEOUT)
        except queue.Empty:
            raise RuntimeError("no sandbox worker free") from None

    def _replace(self, worker: _Worker) -> None:
        worker.kill()
        with self._lock:
            self._alive -= 1
            spawn = self._alive < self.size
            if spawn:
                self._alive += 1
        if spawn:  # in the background: the caller answers now, the next job finds a fresh worker
            threading.Thread(target=self._start, daemon=True, name="sandbox-worker-start").start()

    def run(self, job: Any, timeout: float) -> Any:
        """Send `job` to a free worker, wait at most `timeout` seconds; WorkerFailed if it did not finish."""
        worker = self._take()
        try:
            worker.conn.send_bytes(pickle.dumps(job, protocol=pickle.HIGHEST_PROTOCOL))
            if not worker.conn.poll(timeout):
                self._replace(worker)
                raise WorkerFailed("time")
            reply = worker.conn.recv_bytes()
        except (EOFError, OSError):  # the worker died: the kernel's CPU ceiling (SIGXCPU), or out of memory
            try:
                code = worker.proc.wait(2)
            except subprocess.TimeoutExpired:
                code = None
            self._replace(worker)
            raise WorkerFailed("time" if code == -signal.SIGXCPU else "memory") from None
        self._idle.put(worker)
        return _PlainUnpickler(io.BytesIO(reply)).load()

    def close(self) -> None:
        while True:
            try:
                self._idle.get_nowait().kill()
            except queue.Empty:
                return


_PLAIN = {
    ("builtins", name)
    for name in ("list", "dict", "set", "frozenset", "tuple", "range", "int", "float", "complex", "str", "bool")
} | {
    ("datetime", "datetime"),
    ("datetime", "date"),
    ("datetime", "timedelta"),
    ("datetime", "timezone"),
    ("uuid", "UUID"),
    ("uuid", "SafeUUID"),
    ("copyreg", "_reconstructor"),
    ("builtins", "object"),
}


class _PlainUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _PLAIN:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"a sandbox worker sent {module}.{name}")


# -- the worker's side ------------------------------------------------------------------------------------------


def _address_space() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def _serve(fd: int, handler_name: str) -> None:
    module, _, function = handler_name.partition(":")
    handler = getattr(importlib.import_module(module), function)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    limit = _address_space() + MEMORY_HEADROOM
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    conn = Connection(fd)
    conn.send_bytes(b"ready")
    while True:
        try:
            job = pickle.loads(conn.recv_bytes())
        except EOFError:  # the parent went away
            return
        usage = resource.getrusage(resource.RUSAGE_SELF)
        used = int(usage.ru_utime + usage.ru_stime) + 1
        resource.setrlimit(resource.RLIMIT_CPU, (used + CPU_SECONDS, resource.RLIM_INFINITY))
        try:
            reply = pickle.dumps(handler(job), protocol=pickle.HIGHEST_PROTOCOL)
        except MemoryError:
            reply = pickle.dumps(("failed", "memory"))
        conn.send_bytes(reply)


if __name__ == "__main__":
    sys.stdout = sys.stderr  # nothing a job does can write into the parent's channel
    _serve(int(sys.argv[1]), sys.argv[2])
