"""The search box's query syntax and the snippets of results: pure functions."""

from __future__ import annotations

import pytest

from roomler.search.index import fts5_query, tsquery
from roomler.search.snippet import snippet
from roomler.search.syntax import SearchQuery, Term, parse


def test_words_phrases_and_filters() -> None:
    query = parse(
        '"Release Notes" deploy  in:#General from:@Alice in:#"team chat" in:@Bob in:ops frid'
    )
    assert query == SearchQuery(
        terms=(Term(("release", "notes")), Term(("deploy",)), Term(("frid",), prefix=True)),
        channels=("general", "team chat", "ops"),
        conversations=("bob",),
        authors=("alice",),
        text="Release Notes deploy frid",
    )
    assert query.has_filters


def test_only_a_bare_last_word_of_three_characters_is_a_prefix() -> None:
    assert parse("hello wo").terms == (Term(("hello",)), Term(("wo",)))
    assert parse('hello "world"').terms == (Term(("hello",)), Term(("world",)))
    assert parse("hello world").terms[-1] == Term(("world",), prefix=True)


def test_punctuation_separates_words_and_a_word_with_it_is_a_phrase() -> None:
    assert parse("e-mail foo_bar").terms == (Term(("e", "mail")), Term(("foo", "bar"), True))
    assert parse('"unclosed phrase').terms == (Term(("unclosed", "phrase")),)


def test_engine_syntax_is_never_passed_through() -> None:
    query = parse("NEAR(a b) OR c* 'x' \"y")
    assert fts5_query(query.terms) == '"near a" "b" "or" "c" "x" "y"'
    assert tsquery(query.terms) == "'near' <-> 'a' & 'b' & 'or' & 'c' & 'x' & 'y'"
    assert tsquery(parse("hello wor").terms) == "'hello' & 'wor':*"
    assert fts5_query(parse("hello wor").terms) == '"hello" "wor"*'


@pytest.mark.parametrize(
    ("q", "says"),
    [
        ("", "must not be empty"),
        ("*()", "give a word to find"),
        ("in:#", "in: needs a name"),
        ("in:@", "in: needs a name, as in in:@name"),
        ("in:@a in:@b in:#c in:@d in:#e in:@f", "at most 5 in: filters"),
        ("from:", "from: needs a name"),
        ("x" * 257, "at most 256"),
    ],
)
def test_refusals(q: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse(q)


def test_snippet_marks_every_match_and_cuts_long_text() -> None:
    terms = parse("deploy fri").terms
    assert snippet("Deploy on FRIDAY, not deployed", terms) == [
        {"text": "Deploy", "match": True},
        {"text": " on ", "match": False},
        {"text": "FRIDAY", "match": True},
        {"text": ", not deployed", "match": False},
    ]
    long = "a " * 100 + "deploy" + " b" * 100
    parts = snippet(long, terms)
    shown = "".join(str(p["text"]) for p in parts)
    assert shown.startswith("…a") and shown.endswith("b…") and len(shown) <= 170
    assert [p["text"] for p in parts if p["match"]] == ["deploy"]


def test_snippet_without_terms_is_the_start_of_the_text() -> None:
    assert snippet("from a filter only", ()) == [{"text": "from a filter only", "match": False}]
    parts = snippet("x" * 400, ())
    assert str(parts[-1]["text"]).endswith("…") and len(str(parts[0]["text"])) == 161
