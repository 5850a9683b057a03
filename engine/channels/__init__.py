"""Citizen channels: the outbox's senders, fault-tolerant delivery, message templates, inbound lookups.

- `config`: which channels the environment configures, and each channel's retry policy;
- `templates`: the Vietnamese message templates (Jinja2, sandboxed), overridable by an administrator;
- `notify`: the rows a change writes into the outbox (applicants, officers, the national portal);
- `senders`: e-mail (SMTP), SMS (HTTP gateway), Zalo (template messages, OA replies), national portal,
  national reporting system, and the log file;
- `delivery`: claim → send → record, with backoff, dead letter and per-channel timeouts/concurrency;
- `inbound`: "TRACUU <code>" by SMS and Zalo, with a per-number limit shared by every process;
- `periodic`: the scheduled period report to the national reporting system.

See docs/channels.md.
"""
