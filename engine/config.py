"""Settings, read from the environment once. Defaults are embedded: SQLite and huey's SQLite storage under var/."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .channels.config import ChannelSettings


def _default_var_dir() -> Path:
    return Path(os.environ.get("MOTCUA_VAR", Path.cwd() / "var")).resolve()


def installation_secret(var_dir: Path) -> str:
    """A random signing key made once per installation and kept in var/secret_key (mode 0600), used when
    MOTCUA_SECRET_KEY is not set: every process of one installation signs and checks tokens alike."""
    var_dir.mkdir(parents=True, exist_ok=True)
    path = var_dir / "secret_key"
    if not path.exists():
        tmp = var_dir / f".secret_key.{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(48))
        try:
            os.link(tmp, path)  # atomic: the first process to get here wins, the others read its key
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    return path.read_text().strip()


@dataclass
class OnlineSettings:
    """Citizens online (docs/online.md): sign-in with the national identity provider, the payment gateway,
    the public address of this server (for the gateway's return and confirmation URLs)."""

    public_url: str = "http://127.0.0.1:5000"
    citizen_token_ttl_seconds: int = 1800
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = None
    oidc_id_claim: str = "sub"
    oidc_scope: str = "openid"
    pay_url: str | None = None
    pay_merchant: str = "MOTCUA"
    pay_secret: str | None = None

    @classmethod
    def from_env(cls) -> OnlineSettings:
        env = os.environ
        kw: dict[str, Any] = {}
        for name, var in (
            ("public_url", "MOTCUA_PUBLIC_URL"),
            ("oidc_issuer", "MOTCUA_OIDC_ISSUER"),
            ("oidc_client_id", "MOTCUA_OIDC_CLIENT_ID"),
            ("oidc_client_secret", "MOTCUA_OIDC_CLIENT_SECRET"),
            ("oidc_id_claim", "MOTCUA_OIDC_ID_CLAIM"),
            ("oidc_scope", "MOTCUA_OIDC_SCOPE"),
            ("pay_url", "MOTCUA_PAY_URL"),
            ("pay_merchant", "MOTCUA_PAY_MERCHANT"),
            ("pay_secret", "MOTCUA_PAY_SECRET"),
        ):
            if env.get(var):
                kw[name] = env[var]
        if env.get("MOTCUA_CITIZEN_TOKEN_TTL"):
            kw["citizen_token_ttl_seconds"] = int(env["MOTCUA_CITIZEN_TOKEN_TTL"])
        return cls(**kw)


@dataclass
class Settings:
    var_dir: Path = field(default_factory=_default_var_dir)
    database_url: str = ""  # empty: var/motcua.db (SQLite)
    redis_url: str | None = None
    secret_key: str = "dev-secret-change-me"
    token_ttl_seconds: int = 3600
    max_upload_bytes: int = 20 * 1024 * 1024
    max_bpmn_bytes: int = 5 * 1024 * 1024
    reminder_hours_before_due: float = 4.0
    # working hours before a step's own due time when its holder is reminded (MOTCUA_STEP_REMINDER_HOURS; 0: none)
    step_reminder_hours_before_due: float = 2.0
    sweep_seconds: int = 30
    #: How often a process looks whether another one changed the calendar or users (engine/caches.py).
    cache_check_seconds: float = 1.0
    metrics_token: str | None = None  # MOTCUA_METRICS_TOKEN: required by GET /metrics when set
    channels: ChannelSettings = field(default_factory=ChannelSettings)
    online: OnlineSettings = field(default_factory=OnlineSettings.from_env)
    #: How many reverse proxies in front of the server append to X-Forwarded-For (0: use the peer address).
    trusted_proxies: int = 0

    def __post_init__(self):
        self.var_dir.mkdir(parents=True, exist_ok=True)
        if not self.database_url:
            self.database_url = f"sqlite:///{self.var_dir / 'motcua.db'}"

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        kw: dict[str, Any] = {}
        if env.get("DATABASE_URL"):
            kw["database_url"] = env["DATABASE_URL"]
        if env.get("REDIS_URL"):
            kw["redis_url"] = env["REDIS_URL"]
        kw["secret_key"] = env.get("MOTCUA_SECRET_KEY") or installation_secret(_default_var_dir())
        if env.get("MOTCUA_TOKEN_TTL"):
            kw["token_ttl_seconds"] = int(env["MOTCUA_TOKEN_TTL"])
        if env.get("MOTCUA_MAX_UPLOAD_BYTES"):
            kw["max_upload_bytes"] = int(env["MOTCUA_MAX_UPLOAD_BYTES"])
        if env.get("MOTCUA_SWEEP_SECONDS"):
            kw["sweep_seconds"] = int(env["MOTCUA_SWEEP_SECONDS"])
        if env.get("MOTCUA_CACHE_CHECK_SECONDS"):
            kw["cache_check_seconds"] = float(env["MOTCUA_CACHE_CHECK_SECONDS"])
        if env.get("MOTCUA_TRUSTED_PROXIES"):
            kw["trusted_proxies"] = max(0, int(env["MOTCUA_TRUSTED_PROXIES"]))
        if env.get("MOTCUA_REMINDER_HOURS"):
            kw["reminder_hours_before_due"] = float(env["MOTCUA_REMINDER_HOURS"])
        if env.get("MOTCUA_STEP_REMINDER_HOURS"):
            kw["step_reminder_hours_before_due"] = float(env["MOTCUA_STEP_REMINDER_HOURS"])
        if env.get("MOTCUA_METRICS_TOKEN"):
            kw["metrics_token"] = env["MOTCUA_METRICS_TOKEN"]
        kw["channels"] = ChannelSettings.from_env(env)
        return cls(**kw)
