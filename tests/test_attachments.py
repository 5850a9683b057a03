"""Attachments of a dossier (engine/attachments.py) and the documents checklist blocking intake."""

from __future__ import annotations

import io
import os

import pytest
from sqlalchemy import func, select

from engine import attachments
from engine.dossiers import DossierService
from engine.errors import Conflict, InvalidInput, NotFound, PermissionDenied, TooLarge
from engine.models import Attachment, Dossier, Event
from engine.procedures import deploy, load_path
from tests.conftest import BPMN_DIR
from tests.helpers import ALL_ROLES, drive, fill_form, staff

PDF = b"%PDF-1.7\n" + b"0" * 500 + b"\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100
REQUIRED = ["to_khai", "giay_chung_sinh", "giay_to_tuy_than"]
APPLICANT = {"name": "Nguyễn Thị Lan", "id_number": "001203004567", "phone": "0912345678"}

receiver = staff({"receiver"}, name="tiepnhan")
specialist = staff({"civil_status"}, name="hotich")
citizen = staff({"citizen"}, name="congdan")
other_agency = staff({"receiver", "civil_status"}, agency="000.00.00.H99", name="khac")


@pytest.fixture
def service(db, settings):
    svc = DossierService(db, settings)
    with db.uow() as s:
        deploy(s, load_path(BPMN_DIR / "birth_registration" / "birth_registration.bpmn"), "test")
    return svc


@pytest.fixture
def dossier(service):
    return service.start_dossier(receiver, "1.001193", APPLICANT, 1, {})


def blobs(settings) -> list:
    root = attachments.storage_root(settings)
    return sorted(p for p in root.rglob("*") if p.is_file() and p.parent.name != "tmp")


def intake(service, dossier, **data):
    task = dossier["tasks"][0]
    assert task["spec_name"] == "Task_Intake"
    body = {"requester_relationship": "mother", "decision": "accept", **data}
    return service.complete_task(receiver, task["id"], body)


def test_upload_list_and_open(service, settings, dossier):
    view = attachments.store(
        service, receiver, dossier["code"], "to_khai", "Tờ khai đăng ký.pdf", "application/pdf", io.BytesIO(PDF)
    )
    assert view["document_key"] == "to_khai" and view["filename"] == "Tờ khai đăng ký.pdf"
    assert view["content_type"] == "application/pdf" and view["size"] == len(PDF)
    assert view["uploaded_by"] == "tiepnhan" and len(view["sha256"]) == 64
    listed = attachments.list_attachments(service, specialist, dossier["code"])
    assert [a["id"] for a in listed] == [view["id"]]
    row, path = attachments.open_attachment(service, specialist, dossier["code"], view["id"])
    assert path.read_bytes() == PDF and row["filename"] == "Tờ khai đăng ký.pdf"
    assert path.parent.parent == attachments.storage_root(settings) and path.name == view["sha256"]
    with service.db.read() as s:
        ev = s.scalars(select(Event).where(Event.action == "attachment.added")).one()
        assert ev.details["document_key"] == "to_khai" and ev.actor == "tiepnhan"


def test_same_content_is_stored_once(service, settings, dossier):
    a = attachments.store(service, receiver, dossier["code"], "to_khai", "a.pdf", "application/pdf", PDF)
    b = attachments.store(service, receiver, dossier["code"], "giay_chung_sinh", "b.pdf", None, io.BytesIO(PDF))
    assert a["sha256"] == b["sha256"] and a["id"] != b["id"]
    assert len(blobs(settings)) == 1
    assert not list((attachments.storage_root(settings) / "tmp").iterdir())


def test_size_limit_is_413(service, settings, dossier):
    settings.max_upload_bytes = 100
    with pytest.raises(TooLarge) as exc:
        attachments.store(service, receiver, dossier["code"], None, "big.pdf", "application/pdf", PDF)
    assert exc.value.status == 413
    # a checklist document has its own max_bytes (10 MiB here), not the server-wide limit
    assert attachments.store(service, receiver, dossier["code"], "to_khai", "ok.pdf", None, PDF)["size"] == len(PDF)
    assert len(blobs(settings)) == 1
    assert not list((attachments.storage_root(settings) / "tmp").iterdir())


def test_a_type_that_lies_is_refused(service, settings, dossier):
    with pytest.raises(InvalidInput) as exc:
        attachments.store(
            service,
            receiver,
            dossier["code"],
            "to_khai",
            "to_khai.pdf",
            "application/pdf",
            b"just some text, not a PDF",
        )
    assert exc.value.status == 422
    with pytest.raises(InvalidInput):  # unverifiable content is not accepted either
        attachments.store(service, receiver, dossier["code"], None, "page.html", "text/html", b"<script>x</script>")
    # declared wrongly but the bytes are a PNG: stored as what the bytes prove
    assert (
        attachments.store(service, receiver, dossier["code"], None, "anh.png", "text/plain", PNG)["content_type"]
        == "image/png"
    )
    assert len(blobs(settings)) == 1


@pytest.mark.parametrize(
    "name",
    ["../../etc/passwd", "..\\x", "/etc/passwd", "C:\\evil.pdf", "a\x00.pdf", "dir/a.pdf", "..", "", "\u202egpj.pdf"],
)
def test_path_traversal_in_file_names_is_refused(service, settings, dossier, tmp_path, name):
    before = set(tmp_path.rglob("*"))
    with pytest.raises(InvalidInput) as exc:
        attachments.store(service, receiver, dossier["code"], None, name, "application/pdf", PDF)
    assert exc.value.status == 422
    created = {p for p in set(tmp_path.rglob("*")) - before if p.is_file()}
    assert created == set()
    with service.db.read() as s:
        assert s.scalar(select(func.count()).select_from(Attachment)) == 0


def test_who_may_upload_and_read(service, dossier):
    code = dossier["code"]
    with pytest.raises(NotFound):
        attachments.store(service, other_agency, code, None, "a.pdf", None, PDF)
    with pytest.raises(PermissionDenied):
        attachments.store(service, specialist, code, None, "a.pdf", None, PDF)
    view = attachments.store(service, receiver, code, None, "a.pdf", None, PDF)
    with pytest.raises(NotFound):
        attachments.open_attachment(service, other_agency, code, view["id"])
    with pytest.raises(NotFound):
        attachments.list_attachments(service, other_agency, code)
    with pytest.raises(PermissionDenied):
        attachments.open_attachment(service, citizen, code, view["id"])
    with pytest.raises(PermissionDenied):
        attachments.list_attachments(service, citizen, code)
    with pytest.raises(NotFound):
        attachments.open_attachment(service, receiver, code, view["id"] + 1000)
    supervisor = staff({"supervisor"}, agency="000.00.00.H00", name="giamsat")
    assert attachments.open_attachment(service, supervisor, code, view["id"])[1].read_bytes() == PDF


def test_a_finished_dossier_takes_no_attachment(service, dossier):
    done, _ = drive(service, dossier, {"Task_Intake": {"decision": "refuse", "refusal_reason": "Không đủ"}})
    assert done["finished"]
    with pytest.raises(Conflict):
        attachments.store(service, receiver, dossier["code"], "to_khai", "a.pdf", None, PDF)


def test_a_missing_required_document_blocks_intake(service, dossier):
    with pytest.raises(InvalidInput) as exc:
        intake(service, dossier, documents_received=["to_khai", "giay_chung_sinh"])
    message = exc.value.details["fields"]["documents_received"]
    assert "Giấy tờ tùy thân" in message and "giay_to_tuy_than" in message and "to_khai" not in message
    with pytest.raises(InvalidInput) as exc:
        intake(service, dossier)
    assert all(k in exc.value.details["fields"]["documents_received"] for k in REQUIRED)
    with service.db.read() as s:  # nothing changed
        d = s.scalars(select(Dossier)).one()
        assert d.status == "received" and d.version == dossier["version"]
        assert s.scalar(select(func.count()).select_from(Event).where(Event.action == "task.completed")) == 0
    # ticking it lets the intake pass
    after = intake(service, dossier, documents_received=REQUIRED)
    assert after["tasks"][0]["spec_name"] == "Task_Appraisal"
    assert after["data"]["documents_received"] == REQUIRED


def test_an_uploaded_document_counts_as_provided(service, dossier):
    code = dossier["code"]
    attachments.store(service, receiver, code, "giay_to_tuy_than", "cccd.png", "image/png", PNG)
    after = intake(service, dossier, documents_received=["to_khai", "giay_chung_sinh"])
    assert after["tasks"][0]["spec_name"] == "Task_Appraisal"


def test_unknown_keys_in_documents_received_are_refused(service, dossier):
    with pytest.raises(InvalidInput) as exc:
        intake(service, dossier, documents_received=REQUIRED + ["khong_co"])
    assert "documents_received" in str(exc.value.details)


def test_a_refused_intake_needs_no_documents(service, dossier):
    after = intake(service, dossier, decision="refuse", refusal_reason="Thiếu giấy chứng sinh")
    assert after["status"] == "refused"


def test_fill_form_ticks_every_document(service, dossier):
    form = service.task_form(ALL_ROLES, dossier["tasks"][0]["id"])
    data = fill_form(form, {"decision": "accept"})
    assert set(REQUIRED) <= set(data["documents_received"])
    assert service.complete_task(ALL_ROLES, dossier["tasks"][0]["id"], data)["tasks"]


def test_storage_never_leaves_var_attachments(settings):
    with pytest.raises(NotFound):
        attachments.blob_path(settings, "../../etc/passwd")
    assert os.path.commonpath([attachments.blob_path(settings, "a" * 64), settings.var_dir]) == str(settings.var_dir)


def _remove(service, dossier, view):
    attachments.remove(service, receiver, dossier["code"], view["id"])


def test_a_removed_documents_file_is_deleted_after_the_grace_period(service, settings, dossier):
    from datetime import timedelta

    from engine.models import RemovedBlob, utcnow

    view = attachments.store(service, receiver, dossier["code"], "to_khai", "a.pdf", "application/pdf", PDF)
    path = attachments.blob_path(settings, view["sha256"])
    _remove(service, dossier, view)
    with service.db.read() as s:  # the removal and its file's candidacy: one transaction
        assert s.scalars(select(RemovedBlob.sha256)).all() == [view["sha256"]]
    # within the grace period nothing goes (an upload of the same bytes may not have committed yet)
    assert attachments.collect_removed(service.db, settings) == {"deleted": 0, "shared": 0, "recent": 0}
    assert path.is_file()
    later = utcnow() + attachments.REMOVED_GRACE + timedelta(minutes=1)
    os.utime(path, (later.timestamp() - 7200, later.timestamp() - 7200))  # last written before the grace
    assert attachments.collect_removed(service.db, settings, now=later)["deleted"] == 1
    assert not path.exists() and blobs(settings) == []
    with service.db.read() as s:
        assert s.scalar(select(func.count()).select_from(RemovedBlob)) == 0
    assert attachments.collect_removed(service.db, settings, now=later) == {"deleted": 0, "shared": 0, "recent": 0}


def test_collecting_never_deletes_a_file_still_referred_to_or_just_reused(service, settings, dossier):
    from datetime import timedelta

    from engine.models import RemovedBlob, utcnow

    later = utcnow() + attachments.REMOVED_GRACE + timedelta(minutes=1)
    old = later.timestamp() - 7200
    # the same bytes under two entries: removing one leaves the other's file
    a = attachments.store(service, receiver, dossier["code"], "to_khai", "a.pdf", "application/pdf", PDF)
    b = attachments.store(service, receiver, dossier["code"], "giay_chung_sinh", "b.pdf", "application/pdf", PDF)
    path = attachments.blob_path(settings, a["sha256"])
    _remove(service, dossier, a)
    os.utime(path, (old, old))
    assert attachments.collect_removed(service.db, settings, now=later) == {"deleted": 0, "shared": 1, "recent": 0}
    assert path.is_file()
    # a removal interrupted before it commits (a crash-like failure inside its transaction) names no file
    with pytest.raises(RuntimeError):
        with service.db.uow() as s:
            s.delete(s.get(Attachment, b["id"]))
            s.add(RemovedBlob(sha256=b["sha256"], removed_at=utcnow()))
            s.flush()
            raise RuntimeError("crash")
    assert attachments.collect_removed(service.db, settings, now=later)["deleted"] == 0 and path.is_file()
    # removed, then the same bytes uploaded again (touching the file) before the sweep: the file stays
    _remove(service, dossier, b)
    os.utime(path, (old, old))
    c = attachments.store(service, receiver, dossier["code"], "to_khai", "c.pdf", "application/pdf", PDF)
    assert attachments.collect_removed(service.db, settings, now=later)["shared"] == 1
    row, opened = attachments.open_attachment(service, receiver, dossier["code"], c["id"])
    assert opened.read_bytes() == PDF
    # a sweep that stopped after moving a file aside finishes the job the next time
    _remove(service, dossier, c)
    os.utime(path, (old, old))
    os.replace(path, path.with_name(path.name + ".removed"))
    assert attachments.collect_removed(service.db, settings, now=later)["deleted"] == 1
    assert blobs(settings) == []
    # an upload of the same bytes between storing the file and committing its row touched it: it stays
    d = attachments.store(service, receiver, dossier["code"], "to_khai", "d.pdf", "application/pdf", PDF)
    _remove(service, dossier, d)
    os.utime(path, (later.timestamp(), later.timestamp()))  # written within the grace period before `later`
    assert attachments.collect_removed(service.db, settings, now=later) == {"deleted": 0, "shared": 0, "recent": 1}
    assert path.is_file() and not path.with_name(path.name + ".removed").exists()
    os.utime(path, (old, old))
    assert attachments.collect_removed(service.db, settings, now=later)["deleted"] == 1 and not path.exists()
