"""SQLAlchemy 2 models: the one place where the tables are defined.

Hot paths are indexed: the inbox (ready tasks by agency and role), overdue dossiers and tasks
(status + due time), due timers (next_timer_at), reports (agency, procedure, received_at).
The workflow state lives in its own table so that lists and reports never load it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Timezone-aware datetimes stored as UTC on every backend (SQLite has no time zones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    full_name: Mapped[str | None] = mapped_column(String(200))
    agency: Mapped[str] = mapped_column(String(64), index=True)
    roles: Mapped[list] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # where an officer's reminders also go (docs/channels.md, "Officers"); the inbox always has them
    email: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(32))
    # Carried in every token; a changed password or a disabled account bumps it, revoking older tokens.
    token_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class Procedure(Base):
    """One variant of a procedure: the national code as offered by one agency (`scope` = the agency), or
    province-wide (`scope` = '', `agency` NULL). Each variant is versioned on its own (docs/security.md)."""

    __tablename__ = "procedures"
    __table_args__ = (
        UniqueConstraint("code", "scope", name="uq_procedures_code_scope"),
        # the catalogues' level filter, in their order (by code): GET /procedures?level=, /public/procedures?level=
        Index("ix_procedures_level_code", "level", "code"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(String(64), default="", server_default="")
    name: Mapped[str] = mapped_column(String(500))
    agency: Mapped[str | None] = mapped_column(String(64), index=True)
    current_version: Mapped[int] = mapped_column(Integer, default=0)
    #: the current version's level of service (its `level` metadata), kept here at deploy so the catalogue's
    #: level filter reads an index instead of every current version's JSON metadata
    level: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    versions: Mapped[list[ProcedureVersion]] = relationship(
        back_populates="procedure", order_by="ProcedureVersion.version", lazy="raise_on_sql"
    )


class ProcedureRole(Base):
    """A role named by a deployed procedure's lanes or candidate groups: holding one makes an account staff."""

    __tablename__ = "procedure_roles"

    role: Mapped[str] = mapped_column(String(100), primary_key=True)
    procedure_id: Mapped[int] = mapped_column(ForeignKey("procedures.id"), primary_key=True)


class Throttle(Base):
    """A counter of the sign-in and public-lookup limits, shared by every process (api/ratelimit.py)."""

    __tablename__ = "throttles"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime)
    blocked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ProcedureVersion(Base):
    """One deployed version: the BPMN as given, the parsed spec serialized once, and what was read from it."""

    __tablename__ = "procedure_versions"
    __table_args__ = (
        UniqueConstraint("procedure_id", "version"),
        UniqueConstraint("procedure_id", "content_hash"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    procedure_id: Mapped[int] = mapped_column(ForeignKey("procedures.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64))
    process_id: Mapped[str] = mapped_column(String(200))
    filename: Mapped[str | None] = mapped_column(String(300))
    bpmn_xml: Mapped[str] = mapped_column(Text)
    spec_json: Mapped[str] = mapped_column(Text)
    meta: Mapped[dict] = mapped_column(JSON, default=dict)
    user_tasks: Mapped[list] = mapped_column(JSON, default=list)
    forms: Mapped[dict] = mapped_column(JSON, default=dict)
    deployed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deployed_by: Mapped[str | None] = mapped_column(String(80))

    procedure: Mapped[Procedure] = relationship(back_populates="versions")


class Dossier(Base):
    __tablename__ = "dossiers"
    __table_args__ = (
        Index("ix_dossiers_agency_status", "agency", "status_code"),
        Index("ix_dossiers_open_due", "finished", "due_at"),
        Index("ix_dossiers_agency_open_due", "agency", "finished", "due_at"),
        Index("ix_dossiers_report", "agency", "procedure_code", "received_at"),
        Index("ix_dossiers_finished_at", "finished_at", "received_at"),
        Index("ix_dossiers_next_timer", "next_timer_at"),
        # Monitor and reports (engine/monitor.py, engine/reports.py; docs/reports.md, "Indexes"):
        Index("ix_dossiers_received", "received_at"),
        Index(
            "ix_dossiers_processed",
            "processed_at",
            "received_at",
            "paused_hours",
            "agency",
            "procedure_code",
            sqlite_where=text("processed_at IS NOT NULL"),
            postgresql_where=text("processed_at IS NOT NULL"),
        ),
        Index(
            "ix_dossiers_running_due",
            "finished",
            "processed_at",
            "paused_at",
            "due_at",
            "id",
            "agency",
            "procedure_code",
            sqlite_where=text("finished = 0 AND processed_at IS NULL AND paused_at IS NULL"),
            postgresql_where=text("finished = false AND processed_at IS NULL AND paused_at IS NULL"),
        ),
        Index(
            "ix_dossiers_paused",
            "id",
            sqlite_where=text("paused_at IS NOT NULL"),
            postgresql_where=text("paused_at IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    procedure_version_id: Mapped[int] = mapped_column(ForeignKey("procedure_versions.id"), index=True)
    procedure_code: Mapped[str] = mapped_column(String(64), index=True)
    agency: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(40))
    status_code: Mapped[int] = mapped_column(Integer)
    channel: Mapped[int] = mapped_column(Integer, default=1)
    applicant_name: Mapped[str] = mapped_column(String(200))
    applicant_id_number: Mapped[str | None] = mapped_column(String(32), index=True)
    applicant_phone: Mapped[str | None] = mapped_column(String(32), index=True)  # "my dossiers" (code sign-in)
    applicant_email: Mapped[str | None] = mapped_column(String(200))
    data: Mapped[dict] = mapped_column(JSON, default=dict)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    original_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deadline_hours: Mapped[float | None] = mapped_column(Float)
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    paused_hours: Mapped[float] = mapped_column(Float, default=0.0)
    supplement_count: Mapped[int] = mapped_column(Integer, default=0)
    extended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    extension_reason: Mapped[str | None] = mapped_column(Text)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    returned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished: Mapped[bool] = mapped_column(Boolean, default=False)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_timer_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    overdue_flagged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by: Mapped[str | None] = mapped_column(String(80))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(Integer, nullable=False)

    __mapper_args__ = {"version_id_col": version}

    procedure_version: Mapped[ProcedureVersion] = relationship(lazy="raise_on_sql")
    state: Mapped[WorkflowState] = relationship(lazy="raise_on_sql", uselist=False)


class WorkflowState(Base):
    """The SpiffWorkflow state of one dossier, without the process spec, zlib-compressed JSON."""

    __tablename__ = "workflow_states"

    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossiers.id"), primary_key=True)
    state: Mapped[bytes] = mapped_column(LargeBinary)


class Task(Base):
    """A user task as the inbox needs it. Ready rows are what officers work on."""

    __tablename__ = "tasks"
    __table_args__ = (
        Index("ix_tasks_inbox", "agency", "state", "due_at"),
        Index("ix_tasks_open_due", "state", "due_at"),
        Index("ix_tasks_claimed", "claimed_by", "state"),
        Index(
            "ix_tasks_ready_due",
            "state",
            "due_at",
            "id",
            "agency",
            "procedure_code",
            "dossier_id",
            sqlite_where=text("state = 'ready'"),
            postgresql_where=text("state = 'ready'"),
        ),  # monitor
        # the steps an agency performed for another agency's dossier (engine/step_report.py), by agency and
        # completion time (NULL: open); partial, so it holds those steps only
        Index(
            "ix_tasks_performed",
            "agency",
            "completed_at",
            "created_at",
            sqlite_where=text("for_agency IS NOT NULL"),
            postgresql_where=text("for_agency IS NOT NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossiers.id"), index=True)
    dossier_code: Mapped[str] = mapped_column(String(64))
    procedure_code: Mapped[str] = mapped_column(String(64))
    agency: Mapped[str] = mapped_column(String(64))
    # The dossier's receiving agency when another agency (`agency`) performs this step (an inter-agency
    # procedure, docs/bpmn-conventions.md 9.5); NULL when the receiving agency does it.
    for_agency: Mapped[str | None] = mapped_column(String(64))
    spec_name: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(500))
    roles: Mapped[list] = mapped_column(JSON, default=list)
    assignee: Mapped[str | None] = mapped_column(String(80))
    form_key: Mapped[str | None] = mapped_column(String(300))
    state: Mapped[str] = mapped_column(String(16), default="ready")
    claimed_by: Mapped[str | None] = mapped_column(String(80))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_by: Mapped[str | None] = mapped_column(String(80))
    # The step's deadline watch (engine/scheduler.py, docs/deadlines.md "Step deadlines"): when its reminder
    # is due (NULL: sent, or none), and when it was flagged late (NULL: not yet).
    remind_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    overdue_flagged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ConnectorCall(Base):
    """A service task's call to a connector (engine/connectors.py): pending until the worker calls, then done, or
    an incident an officer can retry. Its id is the waiting service task's id in the workflow."""

    __tablename__ = "connector_calls"
    __table_args__ = (Index("ix_connector_calls_due", "state", "next_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossiers.id"), index=True)
    element_id: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(500))
    connector: Mapped[str] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class TaskRole(Base):
    """Candidate roles of a ready task, one row each, so the inbox is an index lookup by role."""

    __tablename__ = "task_roles"
    __table_args__ = (Index("ix_task_roles_role", "role", "agency"),)

    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(String(100), primary_key=True)
    agency: Mapped[str] = mapped_column(String(64))


class Event(Base):
    """The audit trail: who did what to which dossier, from which status to which, when."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_dossier", "dossier_id", "id"), Index("ix_events_action_at", "action", "at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    dossier_id: Mapped[int | None] = mapped_column(ForeignKey("dossiers.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str | None] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(60))
    from_status: Mapped[str | None] = mapped_column(String(40))
    to_status: Mapped[str | None] = mapped_column(String(40))
    task_id: Mapped[str | None] = mapped_column(String(36))
    details: Mapped[dict | None] = mapped_column(JSON)


class CodeCounter(Base):
    """Daily dossier counter per agency: `{agency}-{yyMMdd}-{NNNN}` restarts each day."""

    __tablename__ = "code_counters"

    agency: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[str] = mapped_column(String(6), primary_key=True)
    value: Mapped[int] = mapped_column(Integer, default=0)


class CalendarDay(Base):
    """An administrator's override of the seeded calendar: an extra holiday or a make-up working day."""

    __tablename__ = "calendar_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    working: Mapped[bool] = mapped_column(Boolean)
    name: Mapped[str] = mapped_column(String(200))
    updated_by: Mapped[str | None] = mapped_column(String(80))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Agency(Base):
    """An agency (cơ quan) and its own working calendar: office hours and days that override its parent's.

    The hierarchy is the one its code carries (engine/agencies.py, docs/deadlines.md "Agencies and their
    calendars"): `000.00.00.H56` the province, `000.00.14.H56` a department or district, `000.31.14.H56` a
    commune of that district. `parent` is derived from the code and stored for the lists."""

    __tablename__ = "agencies"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    parent: Mapped[str | None] = mapped_column(String(64), index=True)
    level: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(300))
    # [["07:00", "11:30"], ["13:30", "17:00"]]; NULL: the parent's (in the end the national default)
    office_hours: Mapped[list | None] = mapped_column(JSON)
    updated_by: Mapped[str | None] = mapped_column(String(80))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class AgencyDay(Base):
    """An agency's own override of one day (an extra day off, a make-up working day), inherited downwards."""

    __tablename__ = "agency_days"

    agency: Mapped[str] = mapped_column(ForeignKey("agencies.code", ondelete="CASCADE"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    working: Mapped[bool] = mapped_column(Boolean)
    name: Mapped[str] = mapped_column(String(200))


class IdempotencyRecord(Base):
    """First answer to a request carrying an Idempotency-Key, replayed on retries."""

    __tablename__ = "idempotency_records"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    username: Mapped[str] = mapped_column(String(80), primary_key=True)
    endpoint: Mapped[str] = mapped_column(String(200))
    status: Mapped[int] = mapped_column(Integer)
    body: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Attachment(Base):
    """A document of a dossier, stored once by content hash under var/.

    `kind` is `document` (the applicant's documents, uploaded at the desk or online) or `result` (an
    electronic result file of the result step, declared by its form's `x-result-files`; docs/online.md)."""

    __tablename__ = "attachments"
    __table_args__ = (
        Index("ix_attachments_dossier_kind", "dossier_id", "kind"),
        # is a stored file still someone's? (engine/attachments.py, collect_removed)
        Index("ix_attachments_sha256", "sha256"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossiers.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16), default="document", server_default="document")
    document_key: Mapped[str | None] = mapped_column(String(100))
    sha256: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    uploaded_by: Mapped[str | None] = mapped_column(String(80))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RemovedBlob(Base):
    """A stored file whose attachment was removed, written in the removal's transaction: the file is deleted
    later, once no attachment refers to its bytes (engine/attachments.py, `collect_removed`)."""

    __tablename__ = "removed_blobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))
    removed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class Notification(Base):
    """Outbox of messages to applicants, officers and national systems; the delivery task drains it.

    A row is pending while `sent_at` and `dead_at` are NULL; `next_try_at` is when it may next be tried (a
    claim moves it ahead by the channel's lease, a failure by the backoff) and is NULL once the row is sent
    or dead. See engine/channels/delivery.py and docs/channels.md.
    """

    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_due", "channel", "next_try_at"),
        Index("ix_notifications_dossier_seq", "dossier_id", "channel", "sequence"),
        Index("ix_notifications_dead", "dead_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    dossier_id: Mapped[int | None] = mapped_column(ForeignKey("dossiers.id"))
    kind: Mapped[str] = mapped_column(String(40))
    channel: Mapped[str] = mapped_column(String(20))
    recipient: Mapped[str | None] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # e-mail subject; structured content a channel sends (e-mail HTML, Zalo template data, portal object)
    subject: Mapped[str | None] = mapped_column(String(300))
    payload: Mapped[dict | None] = mapped_column(JSON)
    # the national portal's per-dossier order (1, 2, 3…): the idempotency key is "<code>-<sequence>"
    sequence: Mapped[int | None] = mapped_column(Integer)
    tries: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_try_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow)
    last_error: Mapped[str | None] = mapped_column(String(500))
    dead_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class MessageTemplate(Base):
    """An administrator's override of a message template shipped in engine/channels/templates/."""

    __tablename__ = "message_templates"

    name: Mapped[str] = mapped_column(String(120), primary_key=True)
    source: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by: Mapped[str | None] = mapped_column(String(80))


class InboundMessage(Base):
    """A citizen's text received by SMS or Zalo (lookups); also the shared count of the per-number limit."""

    __tablename__ = "inbound_messages"
    __table_args__ = (Index("ix_inbound_sender_at", "channel", "sender", "received_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(20))
    sender: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(String(500))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    outcome: Mapped[str] = mapped_column(String(20))


# -- citizens online (engine/citizens.py, engine/payments.py; docs/online.md) ------------------------------------


class RateCounter(Base):
    """A fixed-window counter shared by every process (engine/ratelimit.py): anonymous submissions, sign-in
    codes. One row per key (`otp-phone:0912345678`, `submit-ip:1.2.3.4`…); a stale window restarts at 1."""

    __tablename__ = "rate_counters"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime)
    count: Mapped[int] = mapped_column(Integer, default=0)


class OtpCode(Base):
    """The one live sign-in code of a phone: only its keyed hash is stored; 5 wrong tries lock it."""

    __tablename__ = "otp_codes"

    phone: Mapped[str] = mapped_column(String(32), primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Payment(Base):
    """A payment order of a dossier's fee and, once the gateway confirmed it, its receipt."""

    __tablename__ = "payments"
    __table_args__ = (Index("ix_payments_dossier", "dossier_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[str] = mapped_column(String(64), unique=True)
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossiers.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    gateway: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending, paid
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    gateway_ref: Mapped[str | None] = mapped_column(String(100))
    receipt_no: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict | None] = mapped_column(JSON)


class WorkerHeartbeat(Base):
    """One background worker process (`motcua worker`) and the last time it said it was alive.

    Each consumer process writes its row every few seconds (engine/ops.py, `beat`); /metrics shows the age
    of each beat, so a dead or stuck worker shows as a growing age. Rows not refreshed for a day are removed.
    """

    __tablename__ = "worker_heartbeats"

    id: Mapped[str] = mapped_column(String(120), primary_key=True)  # host:pid
    host: Mapped[str] = mapped_column(String(100))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    beat_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sweeps: Mapped[int] = mapped_column(Integer, default=0)


class CacheGeneration(Base):
    """A counter per kind of data that processes keep in memory (the working calendar, users and their roles),
    bumped in the same transaction as any change of that data; every process compares it to what it last saw
    and drops its copy when it moved (engine/caches.py, docs/operations.md "Scaling")."""

    __tablename__ = "cache_generations"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    generation: Mapped[int] = mapped_column(Integer, default=0)


class ReportDay(Base):
    """The period report's figures counted per (day in UTC+7, agency, procedure), kept in the same transaction
    as every change of a dossier (engine/report_counts.py, docs/reports.md "Aggregates"), so a report reads
    days × (agency, procedure) rows instead of every dossier.

    Flow columns count what happened on `day` (received, completed, refused, …); the `*_delta` columns are
    changes of a stock at the instant `day` 00:00 UTC+7 (open dossiers, open and overdue, open with a
    supplement request): the stock at a day's start is the sum of the deltas up to and including that day."""

    __tablename__ = "report_days"
    # one agency's report reads its rows only (the primary key leads with the day)
    __table_args__ = (Index("ix_report_days_agency", "agency", "day"),)

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    agency: Mapped[str] = mapped_column(String(64), primary_key=True)
    procedure_code: Mapped[str] = mapped_column(String(64), primary_key=True)
    received: Mapped[int] = mapped_column(Integer, default=0)
    received_online: Mapped[int] = mapped_column(Integer, default=0)
    received_in_person: Mapped[int] = mapped_column(Integer, default=0)
    received_postal: Mapped[int] = mapped_column(Integer, default=0)
    received_supplement: Mapped[int] = mapped_column(Integer, default=0)
    fee_due: Mapped[int] = mapped_column(Integer, default=0)
    paid_online: Mapped[int] = mapped_column(Integer, default=0)
    completed: Mapped[int] = mapped_column(Integer, default=0)
    completed_early: Mapped[int] = mapped_column(Integer, default=0)
    completed_late: Mapped[int] = mapped_column(Integer, default=0)
    e_result: Mapped[int] = mapped_column(Integer, default=0)
    working_hours: Mapped[float] = mapped_column(Float, default=0.0)
    refused: Mapped[int] = mapped_column(Integer, default=0)
    stopped: Mapped[int] = mapped_column(Integer, default=0)
    withdrawn: Mapped[int] = mapped_column(Integer, default=0)
    returned: Mapped[int] = mapped_column(Integer, default=0)
    open_delta: Mapped[int] = mapped_column(Integer, default=0)
    overdue_delta: Mapped[int] = mapped_column(Integer, default=0)
    supplement_delta: Mapped[int] = mapped_column(Integer, default=0)


class BoardCountDelta(Base):
    """One change of the supervisors' board counts (engine/boardcounts.py): +1 or -1 open dossiers (kind 'd')
    or ready steps (kind 't') of an (agency, procedure) due within one hour (`bucket`: hours since the Unix
    epoch, UTC). Written only by the database triggers on `dossiers` and `tasks`, never updated (no two
    writers wait for each other); folded into `board_count_totals` by the worker."""

    __tablename__ = "board_count_deltas"
    __table_args__ = (Index("ix_board_count_deltas_bucket", "bucket"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(1))
    agency: Mapped[str] = mapped_column(String(64))
    procedure_code: Mapped[str] = mapped_column(String(64))
    bucket: Mapped[int] = mapped_column(Integer)
    n: Mapped[int] = mapped_column(Integer)


class BoardCountTotal(Base):
    """The folded board counts: per (kind, agency, procedure, hour `bucket`) the number of open dossiers or
    ready steps due in that hour; every hour before `BoardCountCutoff.bucket` is folded into the hour just
    before it (engine/boardcounts.py)."""

    __tablename__ = "board_count_totals"
    __table_args__ = (Index("ix_board_count_totals_bucket", "bucket"),)

    kind: Mapped[str] = mapped_column(String(1), primary_key=True)
    agency: Mapped[str] = mapped_column(String(64), primary_key=True)
    procedure_code: Mapped[str] = mapped_column(String(64), primary_key=True)
    bucket: Mapped[int] = mapped_column(Integer, primary_key=True)
    n: Mapped[int] = mapped_column(Integer)


class BoardCountCutoff(Base):
    """One row: the hour (`bucket`) before which `board_count_totals` holds one folded row per (kind, agency,
    procedure); the board reads the counters only for instants at or after it (engine/boardcounts.py)."""

    __tablename__ = "board_count_cutoff"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bucket: Mapped[int] = mapped_column(Integer)
