"""Which channels are configured, read from the environment (docs/channels.md, "Configuration").

A channel whose variable is unset is not configured: its messages go to the log file (`FileSender`,
var/notifications.log), which is the embedded default.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

#: the outbox's channels (`notifications.channel`)
EMAIL, SMS, ZALO, ZALO_OA = "email", "sms", "zalo", "zalo_oa"
NATIONAL_PORTAL, NATIONAL_REPORT = "national_portal", "national_report"
OFFICER, PUBLIC_PAGE = "officer", "portal"  # an officer's inbox; the public status page (log only)
ALL = (EMAIL, SMS, ZALO, ZALO_OA, NATIONAL_PORTAL, NATIONAL_REPORT, OFFICER, PUBLIC_PAGE)

REPORT_PERIODS = ("monthly", "quarterly", "half_year", "yearly")

#: channels whose messages are never dead-lettered: tried, with the capped backoff, until accepted, their backlog
#: and its age shown by /metrics (docs/channels.md, "Backoff and dead letters"). The national portal's figures
#: rank the province: a status change it never receives is never right again.
RETRIED_FOREVER = frozenset({NATIONAL_PORTAL})


@dataclass
class ChannelPolicy:
    """How one channel is tried: a timeout per attempt, how many at once, backoff and dead letter."""

    timeout: float = 10.0
    concurrency: int = 4
    max_tries: int = 8
    backoff_base: float = 30.0  # seconds before the 2nd try; doubled each time
    backoff_cap: float = 3600.0

    def backoff(self, tries: int) -> float:
        """Seconds to wait after the `tries`-th failed attempt: base·2^(tries-1), at most the cap (the exponent is
        bounded too, so a message retried for months never overflows a float)."""
        return min(self.backoff_cap, self.backoff_base * (2.0 ** min(max(0, tries - 1), 60)))


@dataclass
class ChannelSettings:
    smtp_url: str | None = None
    mail_from: str = "motcua@localhost"
    sms_url: str | None = None
    zalo_url: str | None = None
    zalo_token: str | None = None
    zalo_oa_url: str = "https://openapi.zalo.me/v3.0/oa/message/cs"
    zalo_app_id: str | None = None
    zalo_oa_secret: str | None = None
    portal_url: str | None = None
    reports_url: str | None = None
    reports_schedule: tuple[str, ...] = ("monthly",)
    inbound_token: str | None = None
    public_url: str = "http://127.0.0.1:5000"
    lookups_per_hour: int = 10
    template_refresh_seconds: float = 5.0
    sqlite_write_share: float = 0.05  # at most this share of the time in SQLite's write lock per draining process
    policy: ChannelPolicy = field(default_factory=ChannelPolicy)
    policies: dict[str, ChannelPolicy] = field(default_factory=dict)

    def policy_for(self, channel: str) -> ChannelPolicy:
        return self.policies.get(channel, self.policy)

    def gives_up(self, channel: str, tries: int) -> bool:
        """Whether a message of `channel` that failed its `tries`-th attempt is dead-lettered now: at the
        channel's `max_tries`, except on the channels retried forever (`RETRIED_FOREVER`)."""
        return channel not in RETRIED_FOREVER and tries >= self.policy_for(channel).max_tries

    @property
    def zalo_configured(self) -> bool:
        return bool(self.zalo_url)

    @classmethod
    def from_env(cls, env=None) -> ChannelSettings:
        env = os.environ if env is None else env
        kw: dict = {}
        simple = {
            "MOTCUA_SMTP_URL": "smtp_url",
            "MOTCUA_MAIL_FROM": "mail_from",
            "MOTCUA_SMS_URL": "sms_url",
            "MOTCUA_ZALO_URL": "zalo_url",
            "MOTCUA_ZALO_TOKEN": "zalo_token",
            "MOTCUA_ZALO_OA_URL": "zalo_oa_url",
            "MOTCUA_ZALO_APP_ID": "zalo_app_id",
            "MOTCUA_ZALO_OA_SECRET": "zalo_oa_secret",
            "MOTCUA_PORTAL_URL": "portal_url",
            "MOTCUA_REPORTS_URL": "reports_url",
            "MOTCUA_INBOUND_TOKEN": "inbound_token",
            "MOTCUA_PUBLIC_URL": "public_url",
        }
        for var, attr in simple.items():
            if env.get(var):
                kw[attr] = env[var]
        if env.get("MOTCUA_REPORTS_SCHEDULE"):
            periods = tuple(p.strip() for p in env["MOTCUA_REPORTS_SCHEDULE"].split(",") if p.strip())
            bad = [p for p in periods if p not in REPORT_PERIODS]
            if bad:
                raise ValueError(f"MOTCUA_REPORTS_SCHEDULE: unknown period(s) {bad}; use {REPORT_PERIODS}")
            kw["reports_schedule"] = periods
        if env.get("MOTCUA_LOOKUPS_PER_HOUR"):
            kw["lookups_per_hour"] = int(env["MOTCUA_LOOKUPS_PER_HOUR"])
        if env.get("MOTCUA_OUTBOX_WRITE_SHARE"):
            kw["sqlite_write_share"] = float(env["MOTCUA_OUTBOX_WRITE_SHARE"])
            if not 0 < kw["sqlite_write_share"] <= 1:
                raise ValueError("MOTCUA_OUTBOX_WRITE_SHARE: a share of the time, more than 0 and at most 1")
        if env.get("MOTCUA_TEMPLATE_REFRESH"):
            kw["template_refresh_seconds"] = float(env["MOTCUA_TEMPLATE_REFRESH"])
        base = _policy(env, "MOTCUA_CHANNEL", ChannelPolicy())
        kw["policy"] = base
        kw["policies"] = {
            ch: _policy(env, f"MOTCUA_{ch.upper()}", base)
            for ch in ALL
            if any(env.get(f"MOTCUA_{ch.upper()}_{k}") for k in _POLICY_VARS)
        }
        return cls(**kw)


_POLICY_VARS = {
    "TIMEOUT": ("timeout", float),
    "CONCURRENCY": ("concurrency", int),
    "MAX_TRIES": ("max_tries", int),
    "BACKOFF": ("backoff_base", float),
    "BACKOFF_CAP": ("backoff_cap", float),
}


def _policy(env, prefix: str, base: ChannelPolicy) -> ChannelPolicy:
    kw = dict(base.__dict__)
    for suffix, (attr, conv) in _POLICY_VARS.items():
        if env.get(f"{prefix}_{suffix}"):
            kw[attr] = conv(env[f"{prefix}_{suffix}"])
    return ChannelPolicy(**kw)
