"""Forms: the data a user task collects, checked on the server with JSON Schema 2020-12.

Form files are JSON Schema documents (plain, or `{"schema", "uiSchema"}`), SpiffWorkflow pairs
(`X-schema.json` + `X-uischema.json`) or Camunda Forms (form-js JSON), all loaded into one `Form` model.
Submitted data is cleaned and validated with one Vietnamese / English message per faulty field. Intake forms
may declare the documents checklist of the procedure (`x-documents`); attachments get a safe file name and
a content type proved by their bytes.

This package does not import Flask; nothing here fetches anything from the network.
"""

from .display import labelled_view
from .documents import check_attachment, check_documents, normalize_documents
from .errors import FORM_LEVEL, FormError, FormValidationError
from .files import detect_content_type, safe_filename, sniff_content_type
from .formats import FORMAT_CHECKER
from .jsondata import MAX_DATA_BYTES, MAX_DATA_KEYS, MAX_FORM_BYTES
from .model import PUBLIC_KEYWORD, Form, Forms, load_form, load_forms, public_fields

__all__ = [
    "Form",
    "Forms",
    "load_form",
    "load_forms",
    "public_fields",
    "labelled_view",
    "PUBLIC_KEYWORD",
    "FormError",
    "FormValidationError",
    "FORM_LEVEL",
    "check_documents",
    "check_attachment",
    "normalize_documents",
    "safe_filename",
    "sniff_content_type",
    "detect_content_type",
    "FORMAT_CHECKER",
    "MAX_FORM_BYTES",
    "MAX_DATA_BYTES",
    "MAX_DATA_KEYS",
]
