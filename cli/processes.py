"""Several processes: `motcua serve --workers N` (gunicorn) and `motcua worker --workers N` (a supervisor).

Nothing is shared between the processes but the database and Redis (docs/operations.md, "Scaling"); the
only files they share are the Prometheus samples of the API processes (`var/prometheus/`, emptied at start),
which /metrics adds up.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import click


def prepare_metrics_dir(var_dir) -> Path:
    """An empty `var/prometheus/` named by PROMETHEUS_MULTIPROC_DIR, for this server's processes."""
    path = Path(os.environ.get("PROMETHEUS_MULTIPROC_DIR") or Path(var_dir) / "prometheus")
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    return path


def run_gunicorn(host: str, port: int, workers: int, threads: int) -> None:
    """gunicorn's arbiter with `workers` processes of `threads` threads; each process builds its own app
    (no preloading: no database connection crosses a fork). A process that dies is replaced by gunicorn."""
    try:
        from gunicorn.app.base import BaseApplication
    except ImportError:  # Windows, or a slim install
        raise click.ClickException(
            "--workers > 1 cần gunicorn (Linux) / needs gunicorn (Linux); without it run one process"
        ) from None

    class MotcuaGunicorn(BaseApplication):
        def load_config(self):
            cfg = {
                "bind": f"{host}:{port}",
                "workers": workers,
                "threads": threads,
                "worker_class": "gthread",
                "timeout": 60,
                "graceful_timeout": 20,
                "keepalive": 5,
                "accesslog": None,  # the application writes its own access log (api/observability.py)
                "proc_name": "motcua",
                "child_exit": _child_exit,
            }
            for k, v in cfg.items():
                self.cfg.set(k, v)

        def load(self):
            from api import create_app

            return create_app()

    MotcuaGunicorn().run()


def _child_exit(_server, worker) -> None:
    """A finished API process: its live gauges go (its counters and histograms stay, as Prometheus wants)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def supervise(cmd: list[str], n: int, backoff: float = 1.0) -> None:
    """Run `n` copies of `cmd`; restart one that exits unexpectedly; SIGTERM/SIGINT stop them all."""
    children: list[subprocess.Popen | None] = [None] * n
    stopping = False

    def _stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        while not stopping:
            for i, c in enumerate(children):
                if c is None or c.poll() is not None:
                    if c is not None:
                        click.echo(f"worker {c.pid} exited ({c.returncode}); restarting", err=True)
                        time.sleep(backoff)
                    children[i] = subprocess.Popen(cmd)
            time.sleep(0.5)
    finally:
        for c in children:
            if c is not None and c.poll() is None:
                c.terminate()
        for c in children:
            if c is not None:
                try:
                    c.wait(20)
                except subprocess.TimeoutExpired:
                    c.kill()
        sys.exit(0)
