"""The forms package: loading the three form formats, server-side validation, documents, attachments."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

import forms
from engine.errors import InvalidInput
from forms import (
    FORM_LEVEL,
    Form,
    FormError,
    FormValidationError,
    check_attachment,
    check_documents,
    load_form,
    load_forms,
    safe_filename,
    sniff_content_type,
)
from forms.formats import is_cccd, is_date, is_date_time, is_email, is_phone_vn, is_time, is_vnd
from tests.conftest import EXTERNAL_BPMN

SPIFF_FORMS = EXTERNAL_BPMN / "spiff-example-cli" / "forms"  # ../shared beside the repository

REQUIRED = "Trường bắt buộc / This field is required"


def dump(doc) -> bytes:
    return json.dumps(doc, ensure_ascii=False).encode("utf-8")


def fields_of(excinfo) -> dict:
    return excinfo.value.details["fields"]


# -- a JSON Schema 2020-12 intake form ------------------------------------------------------------------------

KHAI_SINH = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Tờ khai đăng ký khai sinh",
    "type": "object",
    "required": ["ho_ten_nguoi_yeu_cau", "so_cccd", "dien_thoai", "ngay_sinh", "gioi_tinh", "tre"],
    "properties": {
        "ho_ten_nguoi_yeu_cau": {
            "type": "string",
            "title": "Họ và tên người yêu cầu",
            "minLength": 2,
            "maxLength": 100,
        },
        "so_cccd": {"type": "string", "format": "cccd", "title": "Số CCCD"},
        "dien_thoai": {"type": "string", "format": "phone-vn"},
        "email": {"type": "string", "format": "email"},
        "ngay_sinh": {"type": "string", "format": "date"},
        "gio_nop": {"type": "string", "format": "date-time"},
        "gioi_tinh": {"type": "string", "oneOf": [{"const": "nam", "title": "Nam"}, {"const": "nu", "title": "Nữ"}]},
        "so_ban_sao": {"type": "integer", "minimum": 0, "maximum": 10, "default": 1},
        "le_phi": {"type": "integer", "format": "vnd"},
        "tre": {"$ref": "#/$defs/nguoi"},
    },
    "$defs": {
        "nguoi": {
            "type": "object",
            "required": ["ho_ten"],
            "properties": {"ho_ten": {"type": "string", "minLength": 2}, "quoc_tich": {"type": "string"}},
        },
    },
    "x-documents": [
        {
            "key": "to_khai",
            "name": "Tờ khai đăng ký khai sinh",
            "required": True,
            "accept": ["application/pdf", "image/jpeg", "image/png"],
            "max_bytes": 10485760,
        },
        {
            "key": "giay_chung_sinh",
            "name": "Giấy chứng sinh",
            "name_en": "Birth certificate from the hospital",
            "required": True,
        },
        {
            "key": "ket_hon",
            "name": "Giấy chứng nhận kết hôn của cha mẹ",
            "required": False,
            "accept": ["application/pdf"],
        },
    ],
}

GOOD = {
    "ho_ten_nguoi_yeu_cau": "  Nguyễn Văn An ",
    "so_cccd": "001085012345",
    "dien_thoai": "0912 345 678",
    "email": "an.nguyen@example.vn",
    "ngay_sinh": "2025-07-15",
    "gio_nop": "2025-07-15T09:30:00+07:00",
    "gioi_tinh": "nu",
    "le_phi": 0,
    "tre": {"ho_ten": "Nguyễn Thị Bình", "quoc_tich": "Việt Nam"},
}


@pytest.fixture
def khai_sinh() -> Form:
    return load_form("khai_sinh.json", dump(KHAI_SINH))


def test_valid_submission_is_cleaned(khai_sinh):
    cleaned = khai_sinh.validate(dict(GOOD, ghi_chu_khong_khai_bao="dropped", email=""))
    assert cleaned["ho_ten_nguoi_yeu_cau"] == "Nguyễn Văn An"  # trimmed
    assert cleaned["dien_thoai"] == "0912345678"  # separators removed
    assert cleaned["so_ban_sao"] == 1  # top-level default filled in
    assert "ghi_chu_khong_khai_bao" not in cleaned  # undeclared top-level keys are not merged into the dossier
    assert "email" not in cleaned  # a blank answer is no answer
    assert cleaned["tre"] == {"ho_ten": "Nguyễn Thị Bình", "quoc_tich": "Việt Nam"}


def test_invalid_submission_has_a_message_per_field(khai_sinh):
    bad = {
        "ho_ten_nguoi_yeu_cau": "A",
        "so_cccd": "12345",
        "dien_thoai": "091234567",
        "email": "not-an-email",
        "ngay_sinh": "15/07/2025",
        "gio_nop": "2025-07-15T09:30:00",
        "gioi_tinh": "khac",
        "so_ban_sao": "hai",
        "le_phi": -5000,
        "tre": {"quoc_tich": "Việt Nam"},
    }
    with pytest.raises(FormValidationError) as exc:
        khai_sinh.validate(bad)
    fields = fields_of(exc)
    assert fields == {
        "ho_ten_nguoi_yeu_cau": "Phải có ít nhất 2 ký tự / Must be at least 2 characters long",
        "so_cccd": fields["so_cccd"],
        "dien_thoai": fields["dien_thoai"],
        "email": "Địa chỉ email không hợp lệ / Invalid email address",
        "ngay_sinh": "Ngày không hợp lệ (định dạng YYYY-MM-DD) / Invalid date (expected YYYY-MM-DD)",
        "gio_nop": fields["gio_nop"],
        "gioi_tinh": "Giá trị không nằm trong danh sách cho phép / Not one of the allowed options",
        "so_ban_sao": "Phải là số nguyên / Must be a whole number",
        "le_phi": fields["le_phi"],
        "tre.ho_ten": REQUIRED,
    }
    assert fields["so_cccd"].startswith("Số CCCD phải gồm đúng 12 chữ số")
    assert fields["dien_thoai"].startswith("Số điện thoại không hợp lệ")
    assert "múi giờ" in fields["gio_nop"] and "offset" in fields["gio_nop"]
    assert fields["le_phi"].startswith("Số tiền phải là số nguyên không âm")
    err = exc.value
    assert isinstance(err, InvalidInput) and err.status == 422
    assert err.message_vi.startswith("Dữ liệu biểu mẫu 'khai_sinh.json' không hợp lệ")
    assert err.message_en.startswith("The data of form 'khai_sinh.json' is invalid")


def test_missing_and_blank_required_fields(khai_sinh):
    with pytest.raises(FormValidationError) as exc:
        khai_sinh.validate({"ho_ten_nguoi_yeu_cau": "   ", "so_cccd": None, "tre": {"ho_ten": ""}})
    fields = fields_of(exc)
    for name in ("ho_ten_nguoi_yeu_cau", "so_cccd", "dien_thoai", "ngay_sinh", "gioi_tinh", "tre.ho_ten"):
        assert fields[name] == REQUIRED, name


def test_messages_for_bounds_and_types(khai_sinh):
    with pytest.raises(FormValidationError) as exc:
        khai_sinh.validate(dict(GOOD, so_ban_sao=11, tre="Bình"))
    fields = fields_of(exc)
    assert fields["so_ban_sao"] == "Phải nhỏ hơn hoặc bằng 10 / Must be at most 10"
    assert fields["tre"] == "Phải là một nhóm trường (đối tượng) / Must be an object"


def test_data_must_be_plain_bounded_json(khai_sinh):
    for value, field in (
        ({1, 2}, "ghi_chu"),
        (float("nan"), "le_phi"),
        (float("inf"), "le_phi"),
        (b"bytes", "ho_ten_nguoi_yeu_cau"),
        ("a\x00b", "ho_ten_nguoi_yeu_cau"),
    ):
        with pytest.raises(FormValidationError) as exc:
            khai_sinh.validate(dict(GOOD, **{field: value}))
        assert field in fields_of(exc)
    with pytest.raises(FormValidationError) as exc:
        khai_sinh.validate(dict(GOOD, tre={"ho_ten": "x" * (300 * 1024)}))
    assert "quá lớn" in fields_of(exc)[FORM_LEVEL] and "too large" in fields_of(exc)[FORM_LEVEL]
    with pytest.raises(FormValidationError) as exc:
        khai_sinh.validate(dict(GOOD, tre={"ho_ten": "Bình", **{f"k{i}": i for i in range(2500)}}))
    assert "quá nhiều trường" in fields_of(exc)[FORM_LEVEL]
    with pytest.raises(FormValidationError) as exc:
        khai_sinh.validate(["not", "an", "object"])
    assert FORM_LEVEL in fields_of(exc)


def test_additional_properties_false_names_the_extra_field():
    form = Form(
        "strict.json", {"type": "object", "additionalProperties": False, "properties": {"a": {"type": "string"}}}
    )
    with pytest.raises(FormValidationError) as exc:
        form.validate({"a": "x", "b": 1})
    assert fields_of(exc) == {"b": "Trường không được phép / This field is not allowed"}


def test_array_item_paths():
    form = Form(
        "list.json",
        {
            "type": "object",
            "properties": {
                "con": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["ho_ten"],
                        "properties": {"ho_ten": {"type": "string"}, "cccd": {"type": "string", "format": "cccd"}},
                    },
                }
            },
        },
    )
    with pytest.raises(FormValidationError) as exc:
        form.validate({"con": [{"ho_ten": "An", "cccd": "001085012345"}, {"cccd": "999085012345"}]})
    fields = fields_of(exc)
    assert fields["con.1.ho_ten"] == REQUIRED
    assert fields["con.1.cccd"].startswith("Số CCCD")
    assert "con.0.cccd" not in fields


# -- formats --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["001085012345", "079203001234", "096100000000", "048300123456"])
def test_cccd_valid(value):
    assert is_cccd(value)


@pytest.mark.parametrize(
    "value",
    [
        "000085012345",
        "097085012345",
        "99908501234",
        "0010850123456",
        "00108501234a",
        " 001085012345",
        "００１０８５０１２３４５",
        "001-08501234",
        "",
    ],
)
def test_cccd_invalid(value):
    assert not is_cccd(value)


@pytest.mark.parametrize(
    "value", ["0912345678", "+84912345678", "091.234.5678", "0912-345-678", "024 3825 6789", "+842838256789"]
)
def test_phone_vn_valid(value):
    assert is_phone_vn(value)


@pytest.mark.parametrize(
    "value",
    [
        "912345678",
        "091234567",
        "09123456789",
        "+840912345678",
        "84912345678",
        "+85912345678",
        "0912 345 67a",
        "",
        "0912  345678",
        "٠٩١٢٣٤٥٦٧٨",
        "09123456789",
        "024382567890",
    ],
)
def test_phone_vn_invalid(value):
    assert not is_phone_vn(value)


@pytest.mark.parametrize("value", [0, 20000, 10_000.0, 2**53 - 1])
def test_vnd_valid(value):
    assert is_vnd(value)


@pytest.mark.parametrize("value", [-1, 1.5, True, "20000", None, float("nan"), float("inf"), 2**53])
def test_vnd_invalid(value):
    assert not is_vnd(value)


@pytest.mark.parametrize(
    "value,ok",
    [
        ("2025-07-15", True),
        ("2024-02-29", True),
        ("2025-02-29", False),
        ("2025-13-01", False),
        ("20250715", False),
        ("2025-W28-2", False),
        ("15/07/2025", False),
        ("2025-7-15", False),
    ],
)
def test_date(value, ok):
    assert is_date(value) is ok


@pytest.mark.parametrize(
    "value,ok",
    [
        ("2025-07-15T09:30:00+07:00", True),
        ("2025-07-15T02:30:00Z", True),
        ("2025-07-15t02:30:00.123456789z", True),
        ("2025-07-15 09:30:00+07:00", True),
        ("2025-07-15T09:30+07:00", True),
        ("2025-07-15T09:30:00", False),
        ("2025-07-15", False),
        ("2025-07-15T25:00:00Z", False),
        ("2025-02-30T09:30:00Z", False),
        ("2025-07-15T09:30:00+0700", False),
        ("hôm nay", False),
    ],
)
def test_date_time(value, ok):
    assert is_date_time(value) is ok


@pytest.mark.parametrize(
    "value,ok",
    [
        ("09:30", True),
        ("09:30:15", True),
        ("09:30:00+07:00", True),
        ("24:00", False),
        ("9:30", False),
        ("09:60", False),
    ],
)
def test_time(value, ok):
    assert is_time(value) is ok


@pytest.mark.parametrize(
    "value,ok",
    [
        ("an.nguyen@example.vn", True),
        ("a+b@sub.gov.vn", True),
        ("a@b", False),
        ("a b@c.vn", False),
        ("@c.vn", False),
        ("a@@c.vn", False),
        (".a@c.vn", False),
        ("a..b@c.vn", False),
    ],
)
def test_email(value, ok):
    assert is_email(value) is ok


def test_formats_only_constrain_strings_except_vnd():
    assert is_cccd(12) and is_phone_vn(None) and is_date(5) and is_date_time([]) and is_email({})
    assert not is_vnd("0")


# -- form-js (Camunda Forms) ----------------------------------------------------------------------------------

FORMJS_KHAI_SINH = {
    "type": "default",
    "id": "Form_DangKyKhaiSinh",
    "schemaVersion": 16,
    "executionPlatform": "Camunda Platform",
    "executionPlatformVersion": "7.21.0",
    "exporter": {"name": "Camunda Modeler", "version": "5.25.0"},
    "components": [
        {"type": "text", "id": "Heading", "text": "# Tờ khai đăng ký khai sinh"},
        {
            "type": "group",
            "id": "Group_NguoiYeuCau",
            "label": "Người yêu cầu",
            "components": [
                {
                    "type": "textfield",
                    "id": "F1",
                    "key": "ho_ten",
                    "label": "Họ, chữ đệm, tên người yêu cầu",
                    "validate": {"required": True, "maxLength": 100},
                },
                {
                    "type": "textfield",
                    "id": "F2",
                    "key": "so_cccd",
                    "label": "Số định danh cá nhân",
                    "properties": {"format": "cccd"},
                    "validate": {"required": True},
                },
                {
                    "type": "textfield",
                    "id": "F3",
                    "key": "dien_thoai",
                    "label": "Số điện thoại",
                    "validate": {"validationType": "phone"},
                },
                {
                    "type": "textfield",
                    "id": "F4",
                    "key": "email",
                    "label": "Thư điện tử",
                    "validate": {"validationType": "email"},
                },
                {
                    "type": "select",
                    "id": "F5",
                    "key": "quan_he",
                    "label": "Quan hệ với người được khai sinh",
                    "values": [
                        {"label": "Cha", "value": "cha"},
                        {"label": "Mẹ", "value": "me"},
                        {"label": "Ông, bà", "value": "ong_ba"},
                        {"label": "Khác", "value": "khac"},
                    ],
                    "validate": {"required": True},
                },
            ],
        },
        {
            "type": "group",
            "id": "Group_Tre",
            "label": "Người được khai sinh",
            "path": "tre",
            "components": [
                {
                    "type": "textfield",
                    "id": "F6",
                    "key": "ho_ten",
                    "label": "Họ, chữ đệm, tên",
                    "validate": {"required": True, "minLength": "2", "pattern": "^[^0-9]+$"},
                },
                {
                    "type": "datetime",
                    "id": "F7",
                    "key": "ngay_sinh",
                    "subtype": "date",
                    "dateLabel": "Ngày sinh",
                    "validate": {"required": True},
                },
                {
                    "type": "radio",
                    "id": "F8",
                    "key": "gioi_tinh",
                    "label": "Giới tính",
                    "values": [{"label": "Nam", "value": "nam"}, {"label": "Nữ", "value": "nu"}],
                    "validate": {"required": True},
                },
                {
                    "type": "textfield",
                    "id": "F9",
                    "key": "noi_sinh.tinh",
                    "label": "Nơi sinh: tỉnh/thành phố",
                    "validate": {"required": True},
                },
            ],
        },
        {
            "type": "number",
            "id": "F10",
            "key": "so_ban_sao",
            "label": "Số bản sao trích lục",
            "decimalDigits": 0,
            "defaultValue": 1,
            "validate": {"min": 0, "max": 10},
        },
        {"type": "number", "id": "F11", "key": "le_phi", "label": "Lệ phí (đồng)", "properties": {"format": "vnd"}},
        {
            "type": "checklist",
            "id": "F12",
            "key": "giay_to_xuat_trinh",
            "label": "Giấy tờ xuất trình",
            "values": [{"label": "CCCD", "value": "cccd"}, {"label": "Hộ chiếu", "value": "ho_chieu"}],
            "validate": {"required": True},
        },
        {
            "type": "taglist",
            "id": "F13",
            "key": "ngon_ngu",
            "label": "Ngôn ngữ",
            "values": [{"label": "Tiếng Việt", "value": "vi"}, {"label": "Tiếng Anh", "value": "en"}],
        },
        {
            "type": "datetime",
            "id": "F14",
            "key": "hen_tra",
            "subtype": "datetime",
            "label": "Hẹn trả",
            "timeSerializingFormat": "utc_offset",
        },
        {"type": "datetime", "id": "F15", "key": "gio_hen", "subtype": "time", "timeLabel": "Giờ hẹn"},
        {
            "type": "dynamiclist",
            "id": "L1",
            "path": "anh_chi_em",
            "label": "Anh chị em ruột",
            "components": [
                {"type": "textfield", "id": "F16", "key": "ho_ten", "label": "Họ tên", "validate": {"required": True}},
                {
                    "type": "number",
                    "id": "F17",
                    "key": "nam_sinh",
                    "label": "Năm sinh",
                    "decimalDigits": 0,
                    "validate": {"min": 1900, "max": 2100},
                },
            ],
        },
        {"type": "textarea", "id": "F18", "key": "ghi_chu", "label": "Ghi chú", "validate": {"maxLength": 500}},
        {
            "type": "textfield",
            "id": "F19",
            "key": "ly_do_tre_han",
            "label": "Lý do đăng ký quá hạn",
            "conditional": {"hide": "=not(qua_han)"},
            "validate": {"required": True},
        },
        {
            "type": "checkbox",
            "id": "F20",
            "key": "cam_doan",
            "label": "Tôi cam đoan nội dung khai trên đây là đúng sự thật",
            "validate": {"required": True},
        },
        {
            "type": "filepicker",
            "id": "F21",
            "key": "to_khai_scan",
            "label": "Bản chụp tờ khai",
            "accept": ".pdf,.jpg,.jpeg",
            "validate": {"required": True},
        },
        {"type": "button", "id": "Submit", "action": "submit", "label": "Nộp hồ sơ"},
    ],
}

FORMJS_GOOD = {
    "ho_ten": "Trần Văn Cường",
    "so_cccd": "079090001234",
    "dien_thoai": "+84912345678",
    "quan_he": "cha",
    "tre": {
        "ho_ten": "Trần Gia Bảo",
        "ngay_sinh": "2025-07-01",
        "gioi_tinh": "nam",
        "noi_sinh": {"tinh": "Thành phố Hồ Chí Minh"},
    },
    "so_ban_sao": 2,
    "le_phi": 0,
    "giay_to_xuat_trinh": ["cccd"],
    "ngon_ngu": ["vi", "en"],
    "hen_tra": "2025-07-02T10:00:00+07:00",
    "gio_hen": "10:00",
    "anh_chi_em": [{"ho_ten": "Trần Gia Huy", "nam_sinh": 2020}],
    "cam_doan": True,
}


@pytest.fixture
def formjs_form() -> Form:
    return load_form("dang_ky_khai_sinh.form", dump(FORMJS_KHAI_SINH))


def test_formjs_conversion_schema(formjs_form):
    f = formjs_form
    assert f.source_format == "form-js"
    s = f.schema
    assert s["$schema"] == "https://json-schema.org/draft/2020-12/schema" and s["type"] == "object"
    props = s["properties"]
    # a group without path is flattened; with a path it becomes an object; a dotted key nests
    assert {"ho_ten", "so_cccd", "quan_he", "tre"} <= set(props)
    assert props["ho_ten"] == {"title": "Họ, chữ đệm, tên người yêu cầu", "type": "string", "maxLength": 100}
    assert props["so_cccd"]["format"] == "cccd"
    assert props["dien_thoai"]["format"] == "phone-vn"
    assert props["email"]["format"] == "email"
    assert props["quan_he"]["oneOf"][2] == {"const": "ong_ba", "title": "Ông, bà"}
    tre = props["tre"]
    assert tre["type"] == "object" and tre["title"] == "Người được khai sinh"
    assert set(tre["required"]) == {"ho_ten", "ngay_sinh", "gioi_tinh", "noi_sinh"}
    assert tre["properties"]["ho_ten"]["minLength"] == 2 and tre["properties"]["ho_ten"]["pattern"] == "^[^0-9]+$"
    assert tre["properties"]["ngay_sinh"]["format"] == "date"
    assert tre["properties"]["noi_sinh"]["properties"]["tinh"]["type"] == "string"
    assert tre["properties"]["noi_sinh"]["required"] == ["tinh"]
    assert props["so_ban_sao"] == {
        "title": "Số bản sao trích lục",
        "type": "integer",
        "minimum": 0,
        "maximum": 10,
        "default": 1,
    }
    assert props["le_phi"]["format"] == "vnd" and props["le_phi"]["type"] == "integer"
    assert props["giay_to_xuat_trinh"]["type"] == "array" and props["giay_to_xuat_trinh"]["minItems"] == 1
    assert props["ngon_ngu"]["items"]["oneOf"][0] == {"const": "vi", "title": "Tiếng Việt"}
    assert props["hen_tra"]["format"] == "date-time" and props["gio_hen"]["format"] == "time"
    assert props["anh_chi_em"]["items"]["required"] == ["ho_ten"]
    assert props["cam_doan"]["const"] is True
    assert "ly_do_tre_han" not in s["required"]  # may be hidden, so not required on the server
    assert set(s["required"]) == {"ho_ten", "so_cccd", "quan_he", "tre", "giay_to_xuat_trinh", "cam_doan"}
    assert f.fields() == {
        "ho_ten",
        "so_cccd",
        "dien_thoai",
        "email",
        "quan_he",
        "tre",
        "so_ban_sao",
        "le_phi",
        "giay_to_xuat_trinh",
        "ngon_ngu",
        "hen_tra",
        "gio_hen",
        "anh_chi_em",
        "ghi_chu",
        "ly_do_tre_han",
        "cam_doan",
    }
    # the file picker became a checklist document, not a data field
    assert f.documents() == [
        {
            "key": "to_khai_scan",
            "name": "Bản chụp tờ khai",
            "required": True,
            "accept": ["application/pdf", "image/jpeg"],
            "max_bytes": 10 * 1024 * 1024,
        }
    ]
    assert any("ly_do_tre_han" in w for w in f.warnings)
    ui = f.ui_schema
    assert ui["ghi_chu"]["ui:widget"] == "textarea" and ui["quan_he"]["ui:widget"] == "select"
    assert ui["ui:order"][:3] == ["ho_ten", "so_cccd", "dien_thoai"]
    assert ui["ui:formjs"]["id"] == "Form_DangKyKhaiSinh"
    assert f.title == "dang_ky_khai_sinh"


def test_formjs_validation(formjs_form):
    assert formjs_form.validate(FORMJS_GOOD)["tre"]["noi_sinh"] == {"tinh": "Thành phố Hồ Chí Minh"}
    bad = json.loads(json.dumps(FORMJS_GOOD))
    bad.update(
        {
            "so_cccd": "079090",
            "quan_he": "hang_xom",
            "cam_doan": False,
            "giay_to_xuat_trinh": [],
            "so_ban_sao": 2.5,
            "le_phi": 1500.5,
            "ngon_ngu": ["vi", "fr"],
            "hen_tra": "2025-07-02 10:00",
        }
    )
    bad["tre"] = {"ho_ten": "B0", "ngay_sinh": "2025-02-30", "gioi_tinh": "nam", "noi_sinh": {}}
    bad["anh_chi_em"] = [{"nam_sinh": 1800}]
    with pytest.raises(FormValidationError) as exc:
        formjs_form.validate(bad)
    fields = fields_of(exc)
    assert fields["cam_doan"] == "Phải đánh dấu ô này / This box must be ticked"
    assert fields["quan_he"].startswith("Giá trị không nằm trong danh sách")
    assert fields["giay_to_xuat_trinh"] == "Phải có ít nhất 1 mục / Must have at least 1 item(s)"
    assert fields["so_ban_sao"] == "Phải là số nguyên / Must be a whole number"
    assert fields["ngon_ngu.1"].startswith("Giá trị không nằm trong danh sách")
    assert fields["tre.ho_ten"] == "Không đúng định dạng yêu cầu / Does not match the required format"
    assert fields["tre.ngay_sinh"].startswith("Ngày không hợp lệ")
    assert fields["tre.noi_sinh.tinh"] == REQUIRED
    assert fields["anh_chi_em.0.ho_ten"] == REQUIRED
    assert fields["anh_chi_em.0.nam_sinh"] == "Phải lớn hơn hoặc bằng 1.900 / Must be at least 1900"
    assert set(fields) >= {"so_cccd", "le_phi", "hen_tra"}


def test_formjs_required_fields_missing(formjs_form):
    with pytest.raises(FormValidationError) as exc:
        formjs_form.validate({})
    assert {k for k, v in fields_of(exc).items() if v == REQUIRED} == {
        "ho_ten",
        "so_cccd",
        "quan_he",
        "tre",
        "giay_to_xuat_trinh",
        "cam_doan",
    }


@pytest.mark.parametrize(
    "component,problem",
    [
        ({"type": "textfield", "label": "Không có key"}, "'key'"),
        ({"type": "signature", "key": "chu_ky"}, "signature"),
        ({"type": "select", "key": "x", "values": [{"label": "A", "value": "a"}, {"label": "B", "value": "a"}]}, "'a'"),
        ({"type": "dynamiclist", "label": "Danh sách", "components": []}, "path"),
        ({"type": "textfield", "key": "x", "properties": {"format": "mystery"}}, "mystery"),
    ],
)
def test_formjs_unsupported_or_broken_components_are_refused(component, problem):
    doc = {"type": "default", "schemaVersion": 16, "components": [component]}
    with pytest.raises(FormError) as exc:
        load_form("hong.form", dump(doc))
    assert "hong.form" in exc.value.message_vi and "hong.form" in exc.value.message_en
    assert problem in exc.value.message_en


def test_formjs_duplicate_keys_are_refused():
    doc = {
        "type": "default",
        "schemaVersion": 16,
        "components": [
            {"type": "textfield", "key": "a"},
            {"type": "group", "components": [{"type": "number", "key": "a"}]},
        ],
    }
    with pytest.raises(FormError, match="already used"):
        load_form("dup.form", dump(doc))


def test_formjs_feel_expressions_are_reported_not_enforced():
    doc = {
        "type": "default",
        "schemaVersion": 16,
        "components": [
            {"type": "number", "key": "tuoi", "label": "Tuổi", "validate": {"min": "=min_age", "max": 150}},
            {"type": "select", "key": "xa", "label": "Xã", "valuesKey": "ds_xa"},
        ],
    }
    f = load_form("feel.form", dump(doc))
    assert f.schema["properties"]["tuoi"] == {"title": "Tuổi", "type": "number", "maximum": 150}
    assert f.schema["properties"]["xa"] == {"title": "Xã", "type": "string"}
    assert len(f.warnings) == 2
    assert "validate.min" in f.warnings[0] and "ds_xa" not in f.warnings[1] and "options" in f.warnings[1]
    assert f.validate({"tuoi": 3, "xa": "Phường Bến Nghé"}) == {"tuoi": 3, "xa": "Phường Bến Nghé"}


# -- SpiffWorkflow example forms ------------------------------------------------------------------------------


def _spiff_files() -> dict[str, bytes]:
    if not SPIFF_FORMS.is_dir():
        pytest.skip(f"NOTICE: SpiffWorkflow example forms not found at {SPIFF_FORMS}: test skipped")
    files = {p.name: p.read_bytes() for p in sorted(SPIFF_FORMS.glob("*.json"))}
    if not files:
        pytest.skip(f"no .json form files in {SPIFF_FORMS}")
    return files


def test_spiff_example_forms_load_and_validate():
    files = _spiff_files()
    loaded = load_forms(files)
    assert set(loaded) == set(files)
    f = loaded["select_product_and_quantity"]  # found without its extension too
    assert f is loaded["select_product_and_quantity.json"]
    assert f.title == "Select Product and Quantity"
    assert f.fields() == {"product_name", "product_quantity"}
    assert f.validate({"product_name": "product_c", "product_quantity": 2}) == {
        "product_name": "product_c",
        "product_quantity": 2,
    }
    with pytest.raises(FormValidationError) as exc:
        f.validate({"product_name": "product_z", "product_quantity": "2"})
    assert fields_of(exc) == {
        "product_name": "Giá trị không nằm trong danh sách cho phép / Not one of the allowed options",
        "product_quantity": "Phải là số nguyên / Must be a whole number",
    }
    # the examples' defaults ("Y"/"N") are filled in when the field is not sent
    assert loaded["review_order.json"].validate({}) == {"place_order": "N"}


def test_spiff_schema_and_uischema_pair():
    files = _spiff_files()
    name = "select_product_and_quantity.json"
    if name not in files:
        pytest.skip(f"{name} is not among the SpiffWorkflow example forms")
    ui = {"ui:order": ["product_quantity", "product_name"], "product_name": {"ui:widget": "radio"}}
    pair = {
        "product-schema.json": files[name],
        "product-uischema.json": dump(ui),
        "process.bpmn": b"<definitions/>",  # not a form: skipped
    }
    loaded = load_forms(pair)
    assert list(loaded) == ["product-schema.json"]
    f = loaded["product-schema"]
    assert f.ui_schema == ui
    assert f.to_dict()["ui_schema"] == ui
    assert f.to_dict()["schema"] == json.loads(files[name])


def test_uischema_without_schema_is_refused():
    with pytest.raises(FormError) as exc:
        load_forms({"lonely-uischema.json": b"{}"})
    assert "lonely-uischema.json" in exc.value.message_en and "lonely-schema.json" in exc.value.message_en


# -- other file shapes and refusals ---------------------------------------------------------------------------


def test_wrapper_with_schema_and_ui_schema():
    doc = {
        "schema": {"type": "object", "properties": {"y_kien": {"type": "string", "title": "Ý kiến"}}},
        "uiSchema": {"y_kien": {"ui:widget": "textarea"}},
        "title": "Thẩm định hồ sơ",
    }
    f = load_form("tham_dinh.json", dump(doc))
    assert f.to_dict() == {
        "key": "tham_dinh.json",
        "title": "Thẩm định hồ sơ",
        "schema": doc["schema"],
        "ui_schema": doc["uiSchema"],
        "source_format": "json-schema",
    }


@pytest.mark.parametrize(
    "content,problem",
    [
        (b'{"type": "object", "properties": {"a": {"type": "strin"}}}', "not a valid JSON Schema"),
        (b'{"type": "object", "properties": {"a": {"minLength": -1}}}', "not a valid JSON Schema"),
        (
            b'{"type": "object", "properties": {"a": {"pattern": "(unclosed"}}}',
            "the pattern '(unclosed' cannot be used",
        ),
        (b'{"type": "object", "required": "a"}', "not a valid JSON Schema"),
        (b'{"type": "array"}', '"type": "object"'),
        (b"[1, 2]", "JSON object"),
        (b"true", "JSON object"),
        (b'{"type": "object", ', "invalid JSON"),
        (b'{"type": "object", "type": "object"}', "appears twice"),
        (b'{"type": "object", "properties": {"a": {"maximum": NaN}}}', "invalid JSON"),
        (b"\xff\xfe{}", "UTF-8"),
        (b"", "empty"),
        (b'{"$schema": "http://json-schema.org/draft-07/schema#", "type": "object"}', "2020-12"),
        (b'{"type": "object", "properties": {"n": {"type": "integer", "default": "mot"}}}', "default"),
        (b'{"type": "object", "x-documents": [{"key": "a", "name": "A", "requried": true}]}', "requried"),
        (b'{"type": "object", "x-documents": [{"key": "a", "name": "A", "accept": ["text/html"]}]}', "text/html"),
        (b'{"type": "object", "x-documents": [{"key": "a", "name": "A"}, {"key": "a", "name": "B"}]}', "twice"),
        (b'{"type": "object", "x-documents": {"key": "a"}}', "array"),
    ],
)
def test_bad_form_files_are_refused(content, problem):
    with pytest.raises(FormError) as exc:
        load_form("forms/bad.json", content)
    err = exc.value
    assert isinstance(err, InvalidInput) and err.status == 422
    assert err.message_vi.startswith("Biểu mẫu 'bad.json'") and err.message_en.startswith("Form file 'bad.json'")
    assert problem in err.message_en, err.message_en
    assert err.details["problems"][0]["file"] == "bad.json"


def test_deeply_nested_file_is_refused():
    with pytest.raises(FormError, match="nested too deeply"):
        load_form("deep.json", b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(FormError, match="nested too deeply"):
        load_form("deep.json", b'{"a":' * 100 + b"1" + b"}" * 100)


def test_oversized_form_file_is_refused():
    big = dump({"type": "object", "description": "x" * (1024 * 1024)})
    with pytest.raises(FormError) as exc:
        load_form("big.json", big)
    assert "too large" in exc.value.message_en and "quá lớn" in exc.value.message_vi


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "properties": {"a": {"$ref": "https://example.com/schemas/address.json"}}},
        {"type": "object", "properties": {"a": {"$ref": "http://127.0.0.1:8000/x#/defs/a"}}},
        {"type": "object", "properties": {"a": {"$ref": "other-file.json#/properties/a"}}},
        {"type": "object", "properties": {"a": {"$ref": "file:///etc/passwd"}}},
        {"type": "object", "allOf": [{"$dynamicRef": "https://example.com/s#meta"}]},
        {"type": "object", "$defs": {"a": {"$ref": "//example.com/s.json"}}},
        # a remote reference reached through a local one, from a place jsonschema would not look at by itself
        {"type": "object", "properties": {"a": {"$ref": "#/x-hidden"}}, "x-hidden": {"$ref": "https://evil.example/"}},
    ],
)
def test_remote_refs_are_refused_without_fetching(schema, monkeypatch):
    import urllib.request

    def no_network(*a, **k):  # pragma: no cover - would mean a fetch was attempted
        raise AssertionError("network access attempted")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    with pytest.raises(FormError) as exc:
        load_form("remote.json", dump(schema))
    assert "outside the file" in exc.value.message_en and "ra ngoài tệp" in exc.value.message_vi


def test_local_refs_are_allowed_and_checked():
    ok = {
        "type": "object",
        "properties": {"dc": {"$ref": "#/$defs/dia_chi"}, "a": {"$ref": "#anchor_a"}},
        "$defs": {
            "dia_chi": {"type": "object", "required": ["tinh"], "properties": {"tinh": {"type": "string"}}},
            "a": {"$anchor": "anchor_a", "type": "integer"},
        },
    }
    f = load_form("ok.json", dump(ok))
    with pytest.raises(FormValidationError) as exc:
        f.validate({"dc": {}, "a": "x"})
    assert fields_of(exc) == {"dc.tinh": REQUIRED, "a": "Phải là số nguyên / Must be a whole number"}
    for broken in (
        {"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}},
        {"type": "object", "properties": {"a": {"$ref": "#no_such_anchor"}}},
    ):
        with pytest.raises(FormError, match="does not point to anything"):
            load_form("broken.json", dump(broken))
    with pytest.raises(FormError, match=r"\$id"):
        load_form("id.json", dump({"type": "object", "properties": {"a": {"$id": "https://x.example/a"}}}))


# -- model helpers --------------------------------------------------------------------------------------------


def test_to_dict_from_dict_round_trip_and_pickle(khai_sinh, formjs_form):
    for f in (khai_sinh, formjs_form):
        d = f.to_dict()
        assert set(d) >= {"key", "title", "schema", "ui_schema"}
        json.dumps(d)  # storable as JSON
        again = Form.from_dict(json.loads(json.dumps(d)))
        assert again == f and again.source_format == f.source_format
    assert Form.from_dict(khai_sinh.to_dict()).validate(GOOD) == khai_sinh.validate(GOOD)
    copy_ = pickle.loads(pickle.dumps(khai_sinh))
    assert copy_.validate(GOOD)["so_cccd"] == "001085012345"
    d = khai_sinh.to_dict()
    d["schema"]["properties"].clear()  # callers get copies
    assert khai_sinh.fields()


def test_fields_include_conditional_branches():
    schema = {
        "type": "object",
        "properties": {"loai": {"enum": ["ca_nhan", "to_chuc"]}},
        "allOf": [{"$ref": "#/$defs/chung"}],
        "if": {"properties": {"loai": {"const": "to_chuc"}}},
        "then": {"properties": {"ma_so_thue": {"type": "string"}}},
        "else": {"properties": {"so_cccd": {"type": "string", "format": "cccd"}}},
        "$defs": {"chung": {"properties": {"dia_chi": {"type": "string"}}}},
    }
    f = Form("dk.json", schema)
    assert f.fields() == {"loai", "dia_chi", "ma_so_thue", "so_cccd"}
    assert f.validate({"loai": "to_chuc", "ma_so_thue": "0312345678", "khac": 1}) == {
        "loai": "to_chuc",
        "ma_so_thue": "0312345678",
    }


def test_prefill_takes_only_declared_top_level_fields(khai_sinh):
    dossier_data = {
        "ho_ten_nguoi_yeu_cau": "Nguyễn Văn An",
        "tre": {"ho_ten": "Bình"},
        "approved": True,
        "so_cccd": "001085012345",
    }
    pre = khai_sinh.prefill(dossier_data)
    assert pre == {"ho_ten_nguoi_yeu_cau": "Nguyễn Văn An", "so_cccd": "001085012345", "tre": {"ho_ten": "Bình"}}
    pre["tre"]["ho_ten"] = "changed"
    assert dossier_data["tre"]["ho_ten"] == "Bình"
    assert khai_sinh.prefill(None) == {}


def test_forms_lookup_names():
    files = {
        "a.json": dump({"type": "object", "properties": {"x": {"type": "string"}}}),
        "dang_ky.form": dump(FORMJS_KHAI_SINH),
    }
    loaded = load_forms(files)
    assert loaded.get("a") is loaded["a.json"]
    assert loaded["camunda-forms:deployment:dang_ky.form"] is loaded["dang_ky.form"]
    assert loaded.get("Form_DangKyKhaiSinh") is loaded["dang_ky.form"]  # a Camunda formRef names the form id
    assert "dang_ky" in loaded and "nope" not in loaded and loaded.get("nope") is None
    with pytest.raises(KeyError):
        loaded["nope"]
    with pytest.raises(FormError, match="several forms"):
        load_forms({"a.json": files["a.json"], "a.form": files["dang_ky.form"]})


def test_load_forms_reports_every_problem():
    with pytest.raises(FormError) as exc:
        load_forms({"x.json": b"{", "y.json": b'{"type": "string"}', "ok.json": b'{"type": "object"}'})
    problems = exc.value.details["problems"]
    assert [p["file"] for p in problems] == ["x.json", "y.json"]
    assert "x.json" in exc.value.message_en and "y.json" in exc.value.message_en


def test_forms_package_does_not_import_flask():
    code = (
        "import sys, forms; bad = [m for m in sys.modules if m.split('.')[0] in ('flask', 'werkzeug')]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parent.parent)


# -- documents checklist --------------------------------------------------------------------------------------


def test_documents_checklist(khai_sinh):
    docs = khai_sinh.documents()
    assert [d["key"] for d in docs] == ["to_khai", "giay_chung_sinh", "ket_hon"]
    assert docs[1]["accept"] == ["application/pdf", "image/jpeg", "image/png"]  # default
    assert docs[1]["max_bytes"] == 10 * 1024 * 1024 and docs[2]["required"] is False
    missing = check_documents(khai_sinh, {"to_khai", "ket_hon"})
    assert missing == [
        "Thiếu giấy tờ bắt buộc: Giấy chứng sinh (giay_chung_sinh) / "
        "Missing required document: Birth certificate from the hospital (giay_chung_sinh)"
    ]
    assert len(check_documents(khai_sinh, set())) == 2
    assert check_documents(khai_sinh, {"to_khai", "giay_chung_sinh"}) == []
    assert check_documents(khai_sinh.to_dict(), set()) == check_documents(khai_sinh, set())
    assert Form("plain.json", {"type": "object"}).documents() == []


def test_check_attachment(khai_sinh):
    ket_hon = khai_sinh.documents()[2]  # PDF only
    assert check_attachment(ket_hon, "Giấy kết hôn.pdf", "application/pdf", b"%PDF-1.7\n", 2048) == (
        "Giấy kết hôn.pdf",
        "application/pdf",
    )
    with pytest.raises(FormError, match="not accepted"):
        check_attachment(ket_hon, "anh.png", "image/png", b"\x89PNG\r\n\x1a\n....", 2048)
    with pytest.raises(FormError, match="too large"):
        check_attachment(ket_hon, "to.pdf", "application/pdf", b"%PDF-1.7", 11 * 1024 * 1024)
    with pytest.raises(FormError):
        check_attachment(ket_hon, "../to.pdf", "application/pdf", b"%PDF-1.7", 10)


# -- attachments: names and types -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "../../etc/passwd",
        "..",
        ".",
        "...",
        "a/../b.pdf",
        "/etc/passwd",
        "C:\\Windows\\win.ini",
        "..\\boot.ini",
        "thu_muc/to_khai.pdf",
        "to_khai.pdf\x00.jpg",
        "to\nkhai.pdf",
        "to\x1bkhai.pdf",
        "",
        "   ",
        "C:to_khai.pdf",
        "to_khai.pdf:stream",
        ".htaccess",
        "to_khai.pdf.",
        "CON",
        "nul.pdf",
        "COM1.txt",
        "hoa_don\u202efdp.exe",
        "\u2025\uff0fetc",
        "\uff0e\uff0e\uff0fpasswd",
        "a" * 256,
        42,
    ],
)
def test_safe_filename_refuses_dangerous_names(name):
    with pytest.raises(FormError) as exc:
        safe_filename(name)
    assert isinstance(exc.value, InvalidInput)


def test_safe_filename_keeps_vietnamese_names():
    assert safe_filename("Tờ khai đăng ký khai sinh.pdf") == "Tờ khai đăng ký khai sinh.pdf"
    nfd = unicodedata.normalize("NFD", "Giấy chứng sinh - Bệnh viện Từ Dũ.jpg")  # as macOS sends it
    assert safe_filename(nfd) == "Giấy chứng sinh - Bệnh viện Từ Dũ.jpg"
    assert safe_filename("  CCCD mặt trước (bản sao).png  ") == "CCCD mặt trước (bản sao).png"
    assert safe_filename('ảnh "mới"?.png') == "ảnh _mới__.png"
    assert safe_filename("ĐƠN ĐỀ NGHỊ 2025_v2.pdf") == "ĐƠN ĐỀ NGHỊ 2025_v2.pdf"


@pytest.mark.parametrize(
    "head,declared,expected",
    [
        (b"%PDF-1.7\n%\xe2\xe3", "application/pdf", "application/pdf"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image/jpg", "image/jpeg"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "image/png", "image/png"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "image/jpeg", "image/png"),  # mislabelled: the bytes win
        (b"%PDF-1.4", "", "application/pdf"),
        (b"<html><script>", "text/html", "application/octet-stream"),  # never echoes an unverified type
        (
            b"PK\x03\x04",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "application/octet-stream",
        ),
    ],
)
def test_sniff_content_type(head, declared, expected):
    assert sniff_content_type(head, declared) == expected


@pytest.mark.parametrize(
    "head,declared",
    [
        (b"<html><script>alert(1)</script>", "application/pdf"),
        (b"MZ\x90\x00", "image/jpeg"),
        (b"GIF89a", "Image/PNG; charset=binary"),
        (b"", "application/pdf"),
    ],
)
def test_sniff_content_type_catches_lies(head, declared):
    with pytest.raises(FormError):
        sniff_content_type(head, declared)


def test_public_api_is_exported():
    for name in (
        "Form",
        "load_form",
        "load_forms",
        "FormError",
        "FormValidationError",
        "check_documents",
        "safe_filename",
        "sniff_content_type",
    ):
        assert hasattr(forms, name)
    assert issubclass(forms.FormError, InvalidInput) and issubclass(forms.FormValidationError, InvalidInput)


def test_a_form_js_intake_forms_applicant_part_keeps_only_the_applicants_components():
    from forms.model import load_form

    path = Path(__file__).parent / "data" / "online_formjs" / "intake.form"
    form = load_form("intake.form", path.read_bytes())
    assert form.applicant_fields() == ["purpose", "delivery", "address"]
    mine = form.applicant_form()
    assert set(mine.schema["properties"]) == {"purpose", "delivery", "address"}
    doc = mine.ui_schema["ui:formjs"]
    # the officers' fields and the text among them are gone; the condition stays with its field
    assert [c.get("key") for c in doc["components"]] == ["purpose", "delivery", "address"]
    assert doc["components"][2]["conditional"] == {"hide": '=delivery != "buu_dien"'}
    assert doc["x-documents"][0]["key"] == "to_khai"
    # the staff's form keeps the whole document
    assert len(form.ui_schema["ui:formjs"]["components"]) == 6
