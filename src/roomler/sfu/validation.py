"""What crosses the worker channel is checked with pydantic models (never on the per-packet path).

A message's envelope (`roomler.sfu.channel`) and each engine request's ``data``
(`roomler.sfu.engine.handler`) are declared as :class:`WireModel` subclasses:
strict types (a ``"7"`` is not an integer, ``true`` is not one either),
unknown keys ignored. :meth:`WireModel.parse` turns the first validation error
into one ``ValueError`` line that names the field, e.g.
``data.port_min: Input should be a valid integer, got '40000'``.
RTP parameters and capabilities keep their own checks (`roomler.sfu.ortc`).
"""

from __future__ import annotations

from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = ["Id", "JsonObject", "Text", "WireModel", "describe"]

JsonObject = dict[str, Any]
#: A non-empty string (ids, method and event names).
Text = Annotated[str, Field(min_length=1)]
#: An object id made by the web process.
Id = Text

_MAX_SHOWN = 60


class WireModel(BaseModel):
    """A strict, immutable model of one JSON object that crossed the channel."""

    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")

    @classmethod
    def parse(cls, obj: object, what: str) -> Self:
        """Validate ``obj``; ``ValueError`` naming ``what.field`` and the problem."""
        try:
            return cls.model_validate(obj)
        except ValidationError as exc:
            raise ValueError(describe(exc, what)) from None


def describe(exc: ValidationError, what: str) -> str:
    """The first error of ``exc`` on one line: ``what.field: problem, got value``."""
    error = exc.errors(include_url=False)[0]
    location = ".".join(str(part) for part in error["loc"])
    where = f"{what}.{location}" if location else what
    message = f"{where}: {error['msg']}"
    if error["type"] != "missing":
        shown = repr(error["input"])
        if len(shown) > _MAX_SHOWN:
            shown = shown[: _MAX_SHOWN - 3] + "..."
        message += f", got {shown}"
    return message
