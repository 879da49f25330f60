"""Checking a body's depth and text costs memory in proportion to the body, not to its keys' length
times its size.

`check_tree` names the place of what it refuses (`metadata.tags[3]`), and built that name for every
node it visited, before knowing whether any was wrong: each child's name repeats its parent's, so a
body whose one long key (100 KB) holds a list of 5,000 zeros made 5,000 names of 100 KB, half a
gigabyte from a 110 KB body (a 4 MiB one: terabytes, the container killed for memory, API Gateway's
502 instead of an answer). The place is now spelt out only for the node refused.
"""

from __future__ import annotations

import contextlib
import json
import tracemalloc

import pytest

from llm_gateway.api.body import parse_json_body
from llm_gateway.api.errors import InvalidRequest

MAX_BODY = 4 * 1024 * 1024


def _peak_bytes(raw: str) -> int:
    tracemalloc.start()
    try:
        with contextlib.suppress(InvalidRequest):
            parse_json_body(raw, MAX_BODY)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("children", ["[" + ",".join(["0"] * 5000) + "]",
                                      "{" + ",".join(f'"{i}":0' for i in range(5000)) + "}"])
def test_a_long_key_over_many_children_costs_memory_as_the_body_does(children):
    raw = '{"model": "auto", "messages": [], "' + "k" * 100_000 + '": ' + children + "}"
    assert len(raw) < 200_000
    assert _peak_bytes(raw) < 20 * len(raw)


def test_the_refused_place_is_still_named():
    raw = json.dumps({"model": "auto", "metadata": {"tags": ["ok", "x\ud800"]}}, ensure_ascii=True)
    with pytest.raises(InvalidRequest) as caught:
        parse_json_body(raw, MAX_BODY)
    assert caught.value.param == "metadata.tags[1]"
    deep = '{"a": ' + "[" * 120 + "]" * 120 + "}"
    with pytest.raises(InvalidRequest) as caught:
        parse_json_body(deep, MAX_BODY)
    assert caught.value.param == "a" + "[0]" * 99
