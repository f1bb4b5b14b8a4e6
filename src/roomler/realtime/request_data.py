"""The `data` of a client message, checked with a pydantic model: `RequestData`.

A handler declares what its message carries as a `RequestData` subclass (strict types,
unknown keys ignored, frozen); `parse(data)` raises `ValueError` naming the first field
that is missing or wrong, in the words clients see (`docs/protocol.md`):
`data.channel_id is required`, `data.kind must be one of audio|video`. A field's
`description` is what it must be. The frame around it (`type`, `request_id`, `data` an
object) is read by hand in `wire.py`: that runs for every frame, this only for the
message types that carry fields.
"""

from __future__ import annotations

from typing import Annotated, Any, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from roomler.ids import is_id

ID_FORMAT = "a 24-character lowercase hex id"


def _check_id(value: str) -> str:
    if not is_id(value):
        raise ValueError(f"must be {ID_FORMAT}")
    return value


# An id of ours (users, channels, conferences).
Id = Annotated[str, Field(description=ID_FORMAT), AfterValidator(_check_id)]


class RequestData(BaseModel):
    """A strict, immutable model of one client message's `data` object."""

    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")

    @classmethod
    def parse(cls, data: dict[str, Any]) -> Self:
        """Validate `data`; `ValueError` naming `data.<field>` and what it must be.

        A field given as `null` counts as missing.
        """
        present = {key: value for key, value in data.items() if value is not None}
        try:
            return cls.model_validate(present)
        except ValidationError as exc:
            raise ValueError(cls._describe(exc)) from None

    @classmethod
    def _describe(cls, exc: ValidationError) -> str:
        error = exc.errors(include_url=False)[0]
        field = str(error["loc"][0]) if error["loc"] else ""
        if error["type"] == "missing":
            return f"data.{field} is required"
        if error["type"] == "value_error":  # our own check: its message says what is wrong
            return f"data.{field} {error['ctx']['error']}"
        info = cls.model_fields.get(field)
        expected = info.description if info is not None else None
        return f"data.{field} must be {expected or error['msg']}"
