"""Field types shared by every request model and query parameter.

`Text` is the one rule for free text on both databases: PostgreSQL's `text` cannot hold
U+0000 (asyncpg refuses it at bind time) while SQLite stores it, so a NUL anywhere is
refused with 422 before any route runs, whatever the database. Lone surrogates never
get this far: pydantic refuses a string that is not valid Unicode (`string_unicode`).
The rule is also in the OpenAPI schema as a `pattern`, so clients and schema-driven
tests know it; `tests/api/test_fields.py` checks that every text field of the API uses it.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, Field

# ECMA-262 and Python `re` both read `\u0000` in a character class.
NO_NUL_PATTERN = r"^[^\u0000]*$"
NUL_MESSAGE = "must not contain NUL characters (U+0000)"


def refuse_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError(NUL_MESSAGE)
    return value


def given_string(field: str) -> dict[str, Any]:
    """JSON Schema: `field` is present and a string (not null), for cross-field rules
    such as "one of these is required" in a model's `json_schema_extra`."""
    text = {"type": "string", "minLength": 1, "pattern": NO_NUL_PATTERN}
    return {"required": [field], "properties": {field: text}}


def length_message(error: dict[str, Any]) -> str | None:
    """Our wording for a text length refusal, or None if `error` is not one.

    Length limits go on top of `Text` (`Annotated[Text, Field(max_length=100)]`), after its
    NUL check; pydantic then checks them as generic constraints and words the refusal for
    any sized value ("Value should have at most 100 items after validation"). The API says
    the limit in characters instead.
    """
    if error.get("type") not in ("too_long", "too_short") or not isinstance(
        error.get("input"), str
    ):
        return None
    limits = error.get("ctx") or {}
    length = len(error["input"])
    if error["type"] == "too_long":
        return f"must be at most {limits.get('max_length')} characters long, not {length}"
    least = limits.get("min_length")
    if least == 1:
        return "must not be empty"
    return f"must be at least {least} characters long, not {length}"


# Length limits go on top: `Annotated[Text, Field(min_length=1, max_length=100)]`.
Text = Annotated[
    str, AfterValidator(refuse_nul), Field(json_schema_extra={"pattern": NO_NUL_PATTERN})
]
