"""The HTTP server of `motcua serve` (gunicorn on Linux, waitress elsewhere), its processes (`--workers N`)
and `motcua worker --workers N` (a supervisor).

Which server (docs/operations.md, "Deployment"; docs/performance.md, "Hot path"): on Linux gunicorn's gthread
worker, even for one process, since with one client it answered 1.2× the requests per second of waitress
at load 5 and about 2× at load 15–26, in the same runs (fewer thread hand-offs per request: waitress's poll thread hands each request to a task
thread and is woken back through its trigger pipe); waitress stays the portable server (Windows, macOS) and
`--server waitress` picks it anywhere. Neither believes X-Forwarded-* headers: the application does, through
ProxyFix, when MOTCUA_TRUSTED_PROXIES says how many proxies there are (docs/security.md).

Nothing is shared between the processes but the database and Redis (docs/operations.md, "Scaling"); the
only files they share are the Prometheus samples of the API processes (`var/prometheus/`, emptied at start),
which /metrics adds up.
"""

from __future__ import annotations

import importlib
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


def pick_server(name: str, workers: int) -> str:
    """The server `motcua serve --server NAME` runs: `auto` is gunicorn on Linux when installed, else waitress."""
    if name == "auto":
        name = "gunicorn" if sys.platform.startswith("linux") and _has_gunicorn() else "waitress"
        if workers > 1 and name == "waitress":
            name = "gunicorn"  # refused just below, saying why
    if name == "gunicorn" and not _has_gunicorn():
        raise click.ClickException(
            "gunicorn chưa được cài (chỉ có trên Linux/macOS) / gunicorn is not installed (Linux, macOS): "
            "use --server waitress, one process"
        )
    if name == "waitress" and workers > 1:
        raise click.ClickException(
            "waitress chỉ chạy một tiến trình / waitress runs one process: --workers > 1 needs gunicorn"
        )
    return name


def _has_gunicorn() -> bool:
    try:
        import gunicorn  # noqa: F401
    except ImportError:  # Windows, or a slim install
        return False
    return True


def run_waitress(host: str, port: int, threads: int) -> None:
    """waitress, one process of `threads` threads. Its proxy-header middleware is left out (it would only
    delete X-Forwarded-* headers the application does not read unless told to trust a proxy)."""
    import waitress

    from api import create_app
    from engine.memory import Trimmer

    Trimmer().start()  # the freed C heap back to the system every MOTCUA_MALLOC_TRIM_SECONDS (engine/memory.py)
    waitress.serve(
        create_app(), host=host, port=port, threads=threads, ident="motcua", clear_untrusted_proxy_headers=False
    )


def run_gunicorn(host: str, port: int, workers: int, threads: int) -> None:
    """gunicorn's arbiter with `workers` processes of `threads` threads; each process builds its own app
    (no preloading: no database connection crosses a fork). A process that dies is replaced by gunicorn;
    the arbiter stops them all on SIGINT (Ctrl-C) or SIGTERM and then leaves through SystemExit."""
    from gunicorn.app.base import BaseApplication

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
                # no peer is trusted to set the scheme by X-Forwarded-Proto: ProxyFix does that in the
                # application when MOTCUA_TRUSTED_PROXIES is set (gunicorn's default trusts 127.0.0.1)
                "forwarded_allow_ips": "",
                "proc_name": "motcua",
                "child_exit": _child_exit,
                "post_fork": _post_fork,
                "logger_class": _logger_class(),
            }
            if "control_socket_disable" in self.cfg.settings:  # gunicorn >= 25: no runtime control socket
                cfg["control_socket_disable"] = True  # (one per user's home: two servers would share it)
            for k, v in cfg.items():
                self.cfg.set(k, v)

        def load(self):
            from api import create_app

            return create_app()

    # The application's modules are imported here, before gunicorn listens and forks: a process it starts
    # (at boot, or replacing one that died) then only builds the app, so the port does not accept
    # connections long before anything answers them (the imports take seconds on a loaded machine).
    # Imports open no connection and start no thread; the app itself is still built after the fork.
    import api

    for name in api.BLUEPRINTS:
        importlib.import_module(name)
    MotcuaGunicorn().run()


def _logger_class():
    """gunicorn's own records (its start, its processes booted, replaced or stopped) in the application's format,
    JSON by default (engine/logs.py; docs/operations.md, "Logs"): gunicorn gives its error log a handler and a
    plain-text format of its own, so an operator's log collector met lines it could not parse."""
    from gunicorn.glogging import Logger

    from engine import logs

    class MotcuaLogger(Logger):
        def setup(self, cfg):
            super().setup(cfg)
            form = logs.formatter()
            for handler in self.error_log.handlers:
                handler.setFormatter(form)

    return MotcuaLogger


def die_with_parent() -> None:
    """Linux: this process gets SIGKILL when the process that started it dies, however it dies (SIGKILL
    included), so that killing `motcua serve` never leaves its API process answering requests on the inherited
    socket, nor its worker running. Nothing elsewhere (the processes then outlive a killed parent)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


def _die_with_arbiter(server, _worker) -> None:
    die_with_parent()
    if os.getppid() != server.pid:  # the arbiter died between the fork and prctl
        os._exit(1)


def _post_fork(server, worker) -> None:
    """In each API process gunicorn forks: it dies with the arbiter, and trims its C heap (engine/memory.py; a
    thread, so started here: threads do not cross a fork)."""
    from engine.memory import Trimmer

    _die_with_arbiter(server, worker)
    Trimmer().start()


def _child_exit(_server, worker) -> None:
    """A finished API process: its live gauges go (its counters and histograms stay, as Prometheus wants)."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return  # one process: its metrics live in its memory only
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
