"""The part of a message's text shown in a search result, its matched words marked."""

from __future__ import annotations

from roomler.search.syntax import WORD, Term

SNIPPET_LENGTH = 160  # characters of message text around the first match


def snippet(content: str, terms: tuple[Term, ...]) -> list[dict[str, object]]:
    """Up to SNIPPET_LENGTH characters of `content` around its first matched word, as
    parts `{"text", "match"}` (matched words apart, for the client to highlight; no markup,
    so no escaping to get wrong). "…" marks text left out."""
    spans = _matches(content, terms)
    start = 0
    if spans and spans[0][0] > SNIPPET_LENGTH // 3:
        start = _word_start(content, spans[0][0] - SNIPPET_LENGTH // 3)
    end = min(len(content), start + SNIPPET_LENGTH)
    if end < len(content):
        end = _word_end(content, end)
    parts: list[dict[str, object]] = []
    cursor = start
    for first, last in spans:
        if first < start or last > end:
            continue
        if first > cursor:
            parts.append({"text": content[cursor:first], "match": False})
        parts.append({"text": content[first:last], "match": True})
        cursor = last
    if cursor < end:
        parts.append({"text": content[cursor:end], "match": False})
    if start > 0:
        _extend(parts, 0, "…")
    if end < len(content):
        _extend(parts, len(parts), "…")
    return parts


def _matches(content: str, terms: tuple[Term, ...]) -> list[tuple[int, int]]:
    exact = {w for t in terms for w in t.words}
    prefixes = tuple(t.words[-1] for t in terms if t.prefix)
    return [
        found.span()
        for found in WORD.finditer(content)
        if (word := found.group().casefold()) in exact or word.startswith(prefixes or ("\0",))
    ]


def _word_start(content: str, position: int) -> int:
    space = content.rfind(" ", 0, position)
    return space + 1 if space >= 0 and position - space < 20 else position


def _word_end(content: str, position: int) -> int:
    space = content.find(" ", position)
    return space if 0 <= space < position + 20 else position


def _extend(parts: list[dict[str, object]], index: int, ellipsis: str) -> None:
    """Put "…" at the start (index 0) or end of the parts, joined to plain text."""
    neighbour = parts[index - 1] if index else (parts[0] if parts else None)
    if neighbour is not None and not neighbour["match"]:
        text = str(neighbour["text"])
        neighbour["text"] = ellipsis + text.lstrip() if index == 0 else text.rstrip() + ellipsis
        return
    parts.insert(index, {"text": ellipsis, "match": False})
