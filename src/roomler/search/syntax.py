"""The search box's query syntax.

`parse` turns what the user typed into a `SearchQuery`, or raises `ValueError` with a
message fit for a 422. No I/O. The index (search/index.py) receives only words made of
letters and digits, so nothing typed here can reach FTS5's or `to_tsquery`'s own syntax.

    deploy friday            messages with both words (the last, 3+ characters, also as a prefix)
    "release notes"          the words next to each other, in this order
    in:#general in:#ops      only in these channels (by name or path; several widen)
    in:@bob                  only in the direct conversation with this member (by username)
    from:@alice              only by this author (by username; several widen)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_QUERY_LENGTH = 256
MAX_TERMS = 12
MAX_FILTERS = 5  # of each kind
PREFIX_MIN_LENGTH = 3  # a shorter last word would match too much of a big history

# A word as both databases' tokenizers see it (PostgreSQL's after punctuation is blanked,
# FTS5's unicode61): letters and digits; `_` and everything else separate words.
WORD = re.compile(r"[^\W_]+")
FILTER = re.compile(r"(in|from):", re.IGNORECASE)


@dataclass(frozen=True)
class Term:
    """Words that must appear together in this order (one word, or a quoted phrase)."""

    words: tuple[str, ...]
    prefix: bool = False  # the last word may be the start of a longer one


@dataclass(frozen=True)
class SearchQuery:
    terms: tuple[Term, ...]
    channels: tuple[str, ...]  # from in:#name, lower case, without the '#'
    conversations: tuple[str, ...]  # from in:@name (a one-to-one conversation), without the '@'
    authors: tuple[str, ...]  # from from:@name, lower case, without the '@'
    text: str  # the free text as typed, for matching people and channels by name

    @property
    def has_filters(self) -> bool:
        return bool(self.channels or self.conversations or self.authors)


def words(text: str) -> list[str]:
    return [w.casefold() for w in WORD.findall(text)]


def parse(query: str) -> SearchQuery:
    """Read a query; `ValueError` says what is wrong with it."""
    query = query.strip()
    if not query:
        raise ValueError("q: must not be empty")
    if len(query) > MAX_QUERY_LENGTH:
        raise ValueError(f"q: must be at most {MAX_QUERY_LENGTH} characters long")
    phrases: list[tuple[str, bool]] = []  # (text, quoted)
    channels: list[str] = []
    conversations: list[str] = []
    authors: list[str] = []
    free: list[str] = []
    position = 0
    while position < len(query):
        if query[position].isspace():
            position += 1
            continue
        found = FILTER.match(query, position)
        if found:
            value, _, position = _read_value(query, found.end())
            _add_filter(found.group(1).lower(), value, channels, conversations, authors)
            continue
        value, quoted, position = _read_value(query, position)
        phrases.append((value, quoted))
        free.append(value)
    terms = _terms(phrases)
    if not terms and not channels and not conversations and not authors:
        raise ValueError("q: give a word to find, or a filter: in:#channel, in:@user, from:@user")
    text = " ".join(free).strip()
    return SearchQuery(terms, tuple(channels), tuple(conversations), tuple(authors), text)


def _read_value(query: str, position: int) -> tuple[str, bool, int]:
    """(value, quoted, where it ends): a bare word up to the next space, or a "quoted"
    text (unclosed: to the end), after an optional # or @ (`in:#"team chat"`)."""
    sigil = query[position] if query[position : position + 2] in ('#"', '@"') else ""
    start = position + len(sigil)
    if query[start : start + 1] == '"':
        end = query.find('"', start + 1)
        if end < 0:
            return sigil + query[start + 1 :], True, len(query)
        return sigil + query[start + 1 : end], True, end + 1
    end = position
    while end < len(query) and not query[end].isspace():
        end += 1
    return query[position:end], False, end


def _add_filter(
    kind: str, value: str, channels: list[str], conversations: list[str], authors: list[str]
) -> None:
    """`from:@name`; `in:#name` or `in:name` a channel, `in:@name` a conversation (the
    in: filters of both sorts count together: they widen one another)."""
    value = value.strip()
    if kind == "from":
        sigil, target, used = "@", authors, len(authors)
    else:
        sigil, target = ("@", conversations) if value.startswith("@") else ("#", channels)
        used = len(channels) + len(conversations)
    name = value.removeprefix(sigil).strip().casefold()
    if not name:
        raise ValueError(f"q: {kind}: needs a name, as in {kind}:{sigil}name")
    if used == MAX_FILTERS:
        raise ValueError(f"q: at most {MAX_FILTERS} {kind}: filters")
    target.append(name)


def _terms(phrases: list[tuple[str, bool]]) -> tuple[Term, ...]:
    terms = [Term(tuple(found)) for text, _ in phrases if (found := words(text))]
    if sum(len(t.words) for t in terms) > MAX_TERMS:
        raise ValueError(f"q: at most {MAX_TERMS} words")
    # Search as you type: the last word typed bare may be unfinished.
    if phrases and not phrases[-1][1] and terms:
        last = terms[-1]
        if len(last.words[-1]) >= PREFIX_MIN_LENGTH:
            terms[-1] = Term(last.words, prefix=True)
    return tuple(terms)
