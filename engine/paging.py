"""Paging of every list the engine returns: page numbers, the size limit, the one error shape, the page itself.

`per_page` is capped at `MAX_PER_PAGE` (the catalogue of procedures at its own, larger limit); a bad `page` or
`per_page` is `InvalidInput` whose details are `{"fields": {name: rule}}`, like every other input error.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func

from .errors import InvalidInput

MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 20


@dataclass
class Page:
    items: list
    page: int
    per_page: int
    total: int

    def to_dict(self) -> dict:
        return {"items": self.items, "page": self.page, "per_page": self.per_page, "total": self.total}


def paging(page, per_page, maximum: int = MAX_PER_PAGE) -> tuple[int, int]:
    """(page, per_page) as integers: page ≥ 1 and 1 ≤ per_page ≤ maximum, else InvalidInput naming the field."""
    try:
        page = int(page if page is not None else 1)
    except (TypeError, ValueError):
        raise InvalidInput(
            "page phải là số nguyên", "page must be an integer", {"fields": {"page": "integer"}}
        ) from None
    try:
        per_page = int(per_page if per_page is not None else DEFAULT_PER_PAGE)
    except (TypeError, ValueError):
        raise InvalidInput(
            "per_page phải là số nguyên", "per_page must be an integer", {"fields": {"per_page": "integer"}}
        ) from None
    if page < 1:
        raise InvalidInput("page phải ≥ 1", "page must be ≥ 1", {"fields": {"page": "≥ 1"}})
    if not 1 <= per_page <= maximum:
        raise InvalidInput(
            f"per_page phải từ 1 đến {maximum}",
            f"per_page must be between 1 and {maximum}",
            {"fields": {"per_page": f"1–{maximum}"}},
        )
    return page, per_page


def page_of(session, stmt, order, page: int, per_page: int, convert) -> Page:
    """One page of `stmt` in `order` (which ends with a unique tie-breaker), with the total row count."""
    total = session.scalar(stmt.with_only_columns(func.count(), maintain_column_froms=True).order_by(None))
    rows = session.execute(stmt.order_by(*order).limit(per_page).offset((page - 1) * per_page)).all()
    return Page([convert(r) for r in rows], page, per_page, int(total or 0))
