"""The `motcua` console script for operators: serve, worker, deploy, validate, users, calendar, db, demo.

The CLI is a shell like api/: it parses arguments, calls one engine service and prints the outcome. It may
import engine/ and api/ (`serve` starts the HTTP application); engine/ never imports it.
Messages are Vietnamese first, English second; long jobs show a progress bar.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import click

from engine.errors import MotcuaError, ProcedureInvalid

from .agencies import agencies_cli
from .calendar import calendar_cli
from .common import fail, migrated_db, settings
from .migrate import migrate_cli
from .reports import reports_cli


def _bpmn_files(paths) -> list[Path]:
    out = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            out.extend(sorted(p.rglob("*.bpmn")))
        elif p.exists():
            out.append(p)
        else:
            raise click.BadParameter(f"không có tệp / no such file: {p}")
    return out


@click.group()
def main():
    """motcua — quy trình một cửa điện tử / one-stop-shop workflow engine."""


@main.group()
def db():
    """Cơ sở dữ liệu / database."""


@db.command("upgrade")
def db_upgrade():
    """Áp dụng migration / apply migrations (Alembic)."""
    from engine.migrate import upgrade

    s = settings()
    upgrade(s.database_url)
    click.echo(f"Đã cập nhật CSDL / database upgraded: {_safe_url(s.database_url)}")


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _print_problems(path, exc: ProcedureInvalid):
    click.echo(f"✗ {path}", err=True)
    for p in exc.details or []:
        el = f"[{p['element']}] " if p.get("element") else ""
        click.echo(f"    {el}{p['message_vi']}\n      {p['message_en']}", err=True)


def _existing_db():
    """The configured database when it exists and is migrated, else None; never creates nor migrates it
    (validation writes nothing)."""
    from sqlalchemy import inspect
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from engine.db import Database

    s = settings()
    url = make_url(s.database_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        if not Path(url.database).exists():
            return None
    database = Database.from_settings(s)
    try:
        with database.read() as session:
            if inspect(session.connection()).has_table("agencies"):
                return database
    except SQLAlchemyError:
        pass
    database.dispose()
    return None


@main.command()
@click.argument("paths", nargs=-1, required=True)
def validate(paths):
    """Kiểm tra tệp BPMN / validate BPMN files (a folder is searched for *.bpmn).

    What a file names in the database (agencies, called procedures) is checked against the configured one
    when it holds any; otherwise it is a warning (docs/bpmn-conventions.md)."""
    from engine.procedures import load_path, reference_problems

    files = _bpmn_files(paths)
    database = _existing_db()
    bad = 0
    for f in files:
        try:
            loaded = load_path(f)
            if database is None:
                problems, warnings = reference_problems(None, loaded, lenient=True)
            else:
                with database.read() as s:
                    problems, warnings = reference_problems(s, loaded, lenient=True)
            if problems:
                raise ProcedureInvalid(
                    f"{f.name}: " + "; ".join(p["message_vi"] for p in problems),
                    f"{f.name}: " + "; ".join(p["message_en"] for p in problems),
                    problems,
                )
            click.echo(f"✓ {f}: {loaded.code} — {loaded.name}")
            for w in loaded.warnings + warnings:
                click.echo(f"    ⚠ [{w['element']}] {w['message_vi']} / {w['message_en']}")
        except ProcedureInvalid as exc:
            bad += 1
            _print_problems(f, exc)
    if database is not None:
        database.dispose()
    click.echo(f"{len(files) - bad}/{len(files)} hợp lệ / valid")
    sys.exit(1 if bad else 0)


@main.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--actor", default="cli", help="Ghi nhận người triển khai / recorded as the deployer")
def deploy(paths, actor):
    """Triển khai thủ tục / deploy procedures (idempotent: unchanged files are skipped)."""
    from engine.procedures import deploy as deploy_one
    from engine.procedures import load_path

    files = _bpmn_files(paths)
    database = migrated_db()
    results, bad = [], 0
    with click.progressbar(
        files,
        label="Triển khai / deploying",
        show_pos=True,
        item_show_func=lambda p: p.name if p else "",
        file=sys.stderr,
    ) as bar:
        for f in bar:
            try:
                loaded = load_path(f)
                with database.uow() as s:
                    results.append((f, deploy_one(s, loaded, actor)))
            except ProcedureInvalid as exc:
                bad += 1
                _print_problems(f, exc)
            except MotcuaError as exc:
                bad += 1
                click.echo(f"✗ {f}: {exc.message}", err=True)
    for f, r in results:
        what = "phiên bản mới / new version" if r.created else "không đổi / unchanged"
        click.echo(f"✓ {r.code} v{r.version} ({what}) ← {f}")
    click.echo(f"{len(results)} đã triển khai / deployed, {bad} lỗi / failed")
    sys.exit(1 if bad else 0)


@main.group()
def users():
    """Người dùng / users."""


@users.command("add")
@click.argument("username")
@click.option("--password", required=True)
@click.option("--role", "roles", multiple=True, required=True)
@click.option("--agency", required=True)
@click.option("--name", "full_name", default=None)
@click.option("--email", default=None, help="thư nhắc việc / where reminders are e-mailed")
@click.option("--phone", default=None, help="Zalo nhắc việc / where reminders go by Zalo")
def users_add(username, password, roles, agency, full_name, email, phone):
    """Thêm người dùng / add a user."""
    from engine.auth import add_user

    database = migrated_db()
    try:
        with database.uow() as s:
            add_user(s, username, password, roles, agency, full_name, email=email, phone=phone)
    except MotcuaError as exc:
        fail(exc)
    click.echo(f"Đã thêm / added {username} ({', '.join(roles)}) @ {agency}")


@users.command("passwd")
@click.argument("username")
@click.option(
    "--password",
    prompt="Mật khẩu mới / new password",
    hide_input=True,
    confirmation_prompt=True,
    help="the new password (asked for when not given)",
)
def users_passwd(username, password):
    """Đặt mật khẩu mới / set a new password; every token issued before stops working."""
    from engine.auth import set_password

    database = migrated_db()
    try:
        with database.uow() as s:
            set_password(s, username, password)
    except MotcuaError as exc:
        fail(exc)
    click.echo(f"Đã đổi mật khẩu / password changed: {username}; các phiên cũ đã bị thu hồi / old tokens revoked")


@users.command("disable")
@click.argument("username")
def users_disable(username):
    """Khoá tài khoản / disable an account; its tokens stop working."""
    from engine.auth import set_active

    database = migrated_db()
    try:
        with database.uow() as s:
            set_active(s, username, False)
    except MotcuaError as exc:
        fail(exc)
    click.echo(f"Đã khoá / disabled: {username}")


@users.command("enable")
@click.argument("username")
def users_enable(username):
    """Mở lại tài khoản / enable a disabled account (it signs in again with its password)."""
    from engine.auth import set_active

    database = migrated_db()
    try:
        with database.uow() as s:
            set_active(s, username, True)
    except MotcuaError as exc:
        fail(exc)
    click.echo(f"Đã mở lại / enabled: {username}")


@main.command()
@click.option(
    "--agencies",
    "agencies_csv",
    default="bpmn/agencies.csv",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="Cơ quan mà các thủ tục mẫu nêu tên / the agencies the sample procedures name (CSV; skipped if absent)",
)
def demo(agencies_csv):
    """Tạo cơ quan và tài khoản demo / create the sample agencies and the README's demo accounts (skips existing ones).

    Run it before `motcua deploy bpmn/`: the inter-agency sample deploys only once its agencies are registered."""
    from engine.demo import create_demo_accounts

    database = migrated_db()
    path = Path(agencies_csv)
    for line in create_demo_accounts(database, path if path.exists() else None):
        click.echo(line)


@main.command()
@click.option(
    "--workers",
    default=lambda: int(os.environ.get("MOTCUA_WORKERS", "1")),
    type=click.IntRange(1, 64),
    help="Số tiến trình / number of consumer processes (each restarted if it dies)",
)
@click.option("--threads", default=4, type=click.IntRange(1, 64), help="luồng mỗi tiến trình / threads per process")
def worker(workers, threads):
    """Chạy tiến trình nền (huey) / run the background worker for timers, deadlines and the outbox."""
    from engine.memory import limit_arenas

    limit_arenas()  # before any thread (engine/memory.py)
    from engine.worker import run_consumer

    if workers == 1:
        run_consumer(settings(), workers=threads)
        return
    from .processes import supervise

    supervise([sys.executable, "-m", "cli", "worker", "--workers", "1", "--threads", str(threads)], workers)


@main.command()
@click.option("--host", default=lambda: os.environ.get("MOTCUA_HOST", "127.0.0.1"))
@click.option("--port", default=lambda: int(os.environ.get("MOTCUA_PORT", "5000")), type=int)
@click.option("--threads", default=lambda: int(os.environ.get("MOTCUA_THREADS", "8")), type=int)
@click.option(
    "--workers",
    default=lambda: int(os.environ.get("MOTCUA_API_WORKERS", "1")),
    type=click.IntRange(1, 64),
    help="Số tiến trình API / API processes (more than 1: gunicorn, Linux)",
)
@click.option(
    "--server",
    "server_name",
    type=click.Choice(["auto", "gunicorn", "waitress"]),
    default=lambda: os.environ.get("MOTCUA_SERVER", "auto"),
    help="Máy chủ HTTP / HTTP server: auto = gunicorn on Linux, waitress elsewhere",
)
@click.option("--with-worker/--no-worker", default=True, help="Chạy kèm tiến trình nền / also run the worker")
def serve(host, port, threads, workers, server_name, with_worker):
    """Phục vụ API, trang web (và tiến trình nền) / serve the API, pages (and worker).

    Linux: gunicorn (gthread) with WORKERS processes of THREADS threads each; their metrics are added up
    (docs/operations.md). Elsewhere, or with --server waitress: waitress, one process of THREADS threads."""
    from engine import logs
    from engine.memory import limit_arenas

    from .processes import pick_server, prepare_metrics_dir

    limit_arenas()  # before any thread, and inherited by the worker and gunicorn's processes (engine/memory.py)
    server_name = pick_server(server_name, workers)
    s = settings()
    if workers > 1:
        prepare_metrics_dir(s.var_dir)  # before anything imports prometheus_client
    logs.configure()
    child = None
    if with_worker:
        from .processes import die_with_parent

        # the worker goes with this process even when it is killed with SIGKILL (Linux)
        child = subprocess.Popen([sys.executable, "-m", "cli", "worker"], preexec_fn=die_with_parent)  # noqa: PLW1509

    def _stop(*_):
        if child and child.poll() is None:
            child.terminate()
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _stop)  # waitress; gunicorn's arbiter installs its own and exits the same way
    click.echo(
        f"motcua đang chạy tại / serving on http://{host}:{port} ({server_name}, {workers} tiến trình / processes)"
        "  (Ctrl-C để dừng / to stop)"
    )
    try:
        if server_name == "gunicorn":
            from .processes import run_gunicorn

            run_gunicorn(host, port, workers, threads)
        else:
            from .processes import run_waitress

            run_waitress(host, port, threads)
    finally:
        if child and child.poll() is None:
            child.terminate()
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()


main.add_command(calendar_cli)  # `motcua calendar list|set|delete` (cli/calendar.py)
main.add_command(agencies_cli)  # `motcua agencies import FILE` (cli/agencies.py)
main.add_command(migrate_cli)  # `motcua migrate CODE --to VERSION [--dry-run]` (cli/migrate.py)
main.add_command(reports_cli)  # `motcua reports rebuild` (cli/reports.py)
