"""The one JSON-lines reader: every user file gets the same answers for the same faults."""

from __future__ import annotations

import json

import pytest

from gentool_router.errors import CatalogError, IndexFormatError, ToolValidationError
from gentool_router.jsonl import parse_object, problems_message, read_lines
from gentool_router_train.own_catalogue import load_own_catalogue


def test_lines_are_numbered_blank_ones_skipped_and_cut_at_newlines_only(tmp_path):
    # U+2028 is a line separator to str.splitlines but may stand raw inside a JSON string
    text = '{"a": "one\u2028two"}\r\n\n   \n{"b": 2}\n'
    path = tmp_path / "f.jsonl"
    path.write_bytes(text.encode("utf-8"))
    lines = read_lines(path, "test")
    assert [n for n, _ in lines] == [1, 4]
    assert parse_object(lines[0][1]) == {"a": "one\u2028two"} and parse_object(lines[1][1]) == {"b": 2}


def test_missing_file_and_bad_text_name_the_file(tmp_path):
    with pytest.raises(CatalogError, match="query file not found: .*nope.jsonl"):
        read_lines(tmp_path / "nope.jsonl", "query")
    (tmp_path / "bad.jsonl").write_bytes(b'{"a": 1}\n\xff\xfe\n')
    with pytest.raises(IndexFormatError, match=r"bad.jsonl: not UTF-8 text .* at byte 9"):
        read_lines(tmp_path / "bad.jsonl", "index tool", error=IndexFormatError)


@pytest.mark.parametrize("line, error, message", [
    ("{not json", CatalogError, "not valid JSON"),
    ("[" * 100_000 + "]" * 100_000, CatalogError, "nested too deeply"),
    ('["a"]', CatalogError, "a case must be a JSON object"),
    ("3", ToolValidationError, "a case must be a JSON object"),
])
def test_a_line_that_is_not_an_object_says_why(line, error, message):
    not_object = ToolValidationError if error is ToolValidationError else CatalogError
    with pytest.raises(error, match=message):
        parse_object(line, "case", not_object=not_object)


def test_every_problem_of_a_file_in_one_message():
    problems = [f"f.jsonl:{n}: why" for n in range(1, 26)]
    message = problems_message(problems, "label")
    assert message.startswith("25 bad label lines: f.jsonl:1: why; ") and message.endswith("; and 5 more")
    assert "\n" not in message and problems_message(problems[:1], "query") == "1 bad query line: f.jsonl:1: why"


def test_an_own_query_holding_a_line_separator_is_one_query(tmp_path):
    """The own-catalogue reader once split at U+2028 (str.splitlines) and reported half a line as bad JSON."""
    tools = tmp_path / "tools.jsonl"
    tools.write_text(json.dumps({"name": "send_email", "description": "Send an email."}) + "\n")
    queries = tmp_path / "q.jsonl"
    queries.write_text(json.dumps({"query": "Email Bob:\u2028I am late", "tool": "send_email"},
                                  ensure_ascii=False) + "\n", encoding="utf-8")
    own = load_own_catalogue(tools, queries)
    assert len(own.queries) == 1 and own.queries[0].query.endswith("I am late")  # whitespace is normalised
