"""The C heap of a long-running process (glibc's malloc): how many arenas it keeps, and giving freed memory back.

Python's small objects live in its own arenas (pymalloc, handed back to the system when empty). Everything
else — larger objects and buffers, SQLite's page caches and statements, the C parts of SQLAlchemy and of the
drivers — comes from malloc. glibc gives each thread that allocates an arena of its own, up to 8 per CPU, and
keeps what is freed in it for later: a process of 8 to 40 threads (waitress's or gunicorn's, huey's, the
channels' senders) then holds many partly empty arenas, and its RSS climbs with the traffic although what is
live does not (docs/performance.md, "Memory of an API process": the serve process's and the worker's growth was
in the threads' arenas, not in Python's objects nor SQLite's heap).

* `limit_arenas()`, called first by `motcua serve` and `motcua worker` (before any thread): at most
  `MALLOC_ARENA_MAX` arenas, glibc's own variable; 2 when it is not set (threads then share arenas: less
  memory kept for a little more waiting on a lock, the trade-off glibc's documentation describes). It also
  puts the value in the environment, so the processes started from this one (the worker beside
  `motcua serve`, gunicorn's processes, the expression sandboxes) have it from their first allocation.
* `trim()`: `malloc_trim(0)`, giving back to the system the free pages inside every arena, not only at its
  top (what glibc does by itself). `Trimmer` calls it every `MOTCUA_MALLOC_TRIM_SECONDS` (60 s; 0: never)
  in an API process; the worker calls it from its keepalive loop (engine/worker.py).

Both do nothing off glibc (musl, macOS, Windows): there the allocator's own policy stands.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
import time

log = logging.getLogger("motcua.memory")

ARENA_MAX = 2  # arenas when MALLOC_ARENA_MAX is not set
TRIM_SECONDS = 60.0  # default of MOTCUA_MALLOC_TRIM_SECONDS
_M_ARENA_MAX = -8  # glibc's malloc.h

_libc: ctypes.CDLL | None = None
_looked = False


def glibc() -> ctypes.CDLL | None:
    """The C library when it is glibc (`mallopt` and `malloc_trim` exist), else None."""
    global _libc, _looked
    if not _looked:
        _looked = True
        try:
            version = os.confstr("CS_GNU_LIBC_VERSION") or ""  # the C library this process runs on
        except (ValueError, OSError):  # not a GNU system
            version = ""
        if version.startswith("glibc"):
            try:
                lib = ctypes.CDLL(None)
                lib.mallopt.argtypes, lib.mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
                lib.malloc_trim.argtypes, lib.malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
                _libc = lib
            except (OSError, AttributeError):
                _libc = None
    return _libc


def limit_arenas() -> int | None:
    """At most `MALLOC_ARENA_MAX` malloc arenas in this process (2 when unset); the number, or None off glibc.

    To be called before the process starts its second thread: glibc fixes the limit when it first needs a
    second arena. A value the operator set is glibc's own doing (it reads the variable at start) and is kept."""
    lib = glibc()
    if lib is None:
        return None
    given = os.environ.get("MALLOC_ARENA_MAX", "").strip()
    if given:
        return int(given) if given.isdigit() else None
    if threading.active_count() > 1:
        log.warning("malloc arenas limited after threads started: the limit may not hold in this process")
    if lib.mallopt(_M_ARENA_MAX, ARENA_MAX) != 1:
        return None
    os.environ["MALLOC_ARENA_MAX"] = str(ARENA_MAX)  # the processes started from this one, from their start
    return ARENA_MAX


def trim() -> bool:
    """Give the free memory of every malloc arena back to the system; False off glibc or when none was."""
    lib = glibc()
    return bool(lib.malloc_trim(0)) if lib is not None else False


def trim_seconds() -> float:
    """`MOTCUA_MALLOC_TRIM_SECONDS`: seconds between trims of a long-running process (0: never)."""
    value = os.environ.get("MOTCUA_MALLOC_TRIM_SECONDS", "").strip()
    return max(0.0, float(value)) if value else TRIM_SECONDS


class Trimmer(threading.Thread):
    """A daemon thread calling `trim()` every `every` seconds (an API process: its server has no periodic loop of
    its own). Not started off glibc or when `every` is 0."""

    def __init__(self, every: float | None = None):
        super().__init__(name="motcua-malloc-trim", daemon=True)
        self.every = trim_seconds() if every is None else every
        self.stop = threading.Event()
        self.trims = 0

    def start(self) -> None:
        if self.every > 0 and glibc() is not None:
            super().start()

    def run(self) -> None:
        while not self.stop.wait(self.every):
            t0 = time.perf_counter()
            trim()
            self.trims += 1
            log.debug("malloc_trim in %.1f ms", (time.perf_counter() - t0) * 1000)


class Periodic:
    """`trim()` at most every `every` seconds, for a loop that already runs (the worker's keepalive)."""

    def __init__(self, every: float | None = None):
        self.every = trim_seconds() if every is None else every
        self.next = time.monotonic() + self.every
        self.trims = 0

    def maybe(self) -> None:
        if self.every <= 0 or time.monotonic() < self.next:
            return
        self.next = time.monotonic() + self.every
        if glibc() is not None:
            trim()
            self.trims += 1
