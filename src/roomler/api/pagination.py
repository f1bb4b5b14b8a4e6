"""`?page=&per_page=` pagination with one response shape."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Query

MAX_OFFSET = 2**62


@dataclass(frozen=True)
class PageRequest:
    page: int
    per_page: int

    @property
    def offset(self) -> int:
        # A page far past the end is simply empty; clamp so the SQL OFFSET fits in 64 bits.
        return min((self.page - 1) * self.per_page, MAX_OFFSET)


def page_request(
    page: Annotated[int, Query(ge=1)] = 1,
    per_page: Annotated[int, Query(ge=1, le=100)] = 25,
) -> PageRequest:
    return PageRequest(page, per_page)


Pagination = Annotated[PageRequest, Depends(page_request)]


def paginated(items: list[Any], total: int, request: PageRequest) -> dict[str, Any]:
    return {
        "items": items,
        "total": total,
        "page": request.page,
        "per_page": request.per_page,
        "total_pages": math.ceil(total / request.per_page) if total else 0,
    }
