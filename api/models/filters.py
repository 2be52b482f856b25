"""Field types the admin lists' filters share."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from api.cursors import SIGNED_CURSOR_PATTERN

BigId = Annotated[int, Field(ge=1, le=2**63 - 1)]
# No NUL: PostgreSQL text cannot hold one (it would fail in the database as a 500, not here as a 422).
NoNulText = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00]*$")]
# Typed by people: surrounding blanks dropped.
SearchText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=320, pattern=r"^[^\x00]*$")
]


Orderable = TypeVar("Orderable", dt.date, Decimal, float)  # datetime is a date


def require_ordered(name: str, low: Orderable | None, high: Orderable | None) -> None:
    if low is not None and high is not None and low > high:
        raise ValueError(f"{name} range is empty: {name}_from/min is after {name}_to/max")


class ListQuery(BaseModel):
    """Paging parameters every admin list takes beside its filters (one query-parameter model)."""

    model_config = ConfigDict(extra="forbid")

    cursor: str | None = Field(
        default=None, pattern=SIGNED_CURSOR_PATTERN, description="next_cursor of the previous page"
    )

    def filters(self) -> dict[str, object]:
        """The filters given (not the paging): the RPC's arguments."""
        return self.model_dump(exclude={"cursor", "limit"}, exclude_none=True)

    def scope(self, list_name: str) -> str:
        """What this list's cursors are bound to: the list and its filters (and sort), as JSON."""
        return list_name + ":" + self.model_dump_json(exclude={"cursor", "limit"}, exclude_none=True)
