"""The strict JSON parser: its refusals, and linear time on bodies built to make a scanner backtrack."""

from __future__ import annotations

import time

import pytest

from core.strict_json import MAX_DEPTH, StrictJSONError, loads, nesting_depth


@pytest.mark.parametrize("text, depth", [
    ("{}", 1), ("[[], [[]]]", 3), ('["[[[", "]"]', 1), ('{"a": "\\\\", "b": [[1]]}', 3), ('"\\"[["', 0),
    ('["unterminated [[[', 1),
])
def test_nesting_depth_ignores_brackets_inside_strings(text, depth):
    assert nesting_depth(text) == depth


def test_the_depth_limit_is_inclusive():
    assert loads("[" * MAX_DEPTH + "]" * MAX_DEPTH) is not None
    with pytest.raises(StrictJSONError, match="32 levels"):
        loads("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))


@pytest.mark.parametrize("body", [
    '"' + '\\"' * 40000,                  # an unterminated string of escaped quotes: quadratic for a naive scanner
    '["' + 'a\\"' * 30000,
    '"' * 100000,
    "[" * 100000,
    '{"a": ' * 30000,
])
def test_pathological_bodies_are_refused_in_linear_time(body):
    started = time.perf_counter()
    with pytest.raises(StrictJSONError):
        loads(body)
    assert time.perf_counter() - started < 0.5  # the first body took 90 s with a backtracking string pattern


def test_paired_surrogates_are_one_character_and_lone_ones_are_refused():
    assert loads('{"e": "\\ud83d\\ude00"}') == {"e": "\U0001f600"}
    for lone in ('"\\ud800"', '"x\\udfff"', '{"\\ud800": 1}', '["\\ude00\\ud83d"]'):
        with pytest.raises(StrictJSONError, match="surrogate"):
            loads(lone)
