"""The payload checks refuse exactly as before when the text scan lets the value walk be skipped."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contract import json_values
from foundation.errors import RemoteProtocolError


def _reason(text: str) -> str:
    try:
        json_values.loads(text)
    except (RemoteProtocolError, json.JSONDecodeError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return "ok"


def _reference(text: str) -> str:
    """The checks as they were: json.loads, then the full walk over every value."""
    try:
        value = json.loads(text, parse_constant=json_values._refuse_constant)
        json_values.check_value(value)
    except RecursionError:
        return f"RemoteProtocolError: payload nesting exceeds {json_values.MAX_DEPTH} levels"
    except (RemoteProtocolError, json.JSONDecodeError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return "ok"


@pytest.mark.parametrize("text", [
    '{"a":' * 31 + "1" + "}" * 31,  # 32 levels: allowed
    '{"a":' * 32 + "1" + "}" * 32,  # 33: refused
    "[" * 32 + "]" * 32, "[" * 33 + "]" * 33,
    '{"s":"\\ud800"}', '{"\\udc00":1}', '{"s":"\\ud83d\\ude00"}', '{"s":"\\u00e9"}',
    '{"x":NaN}', '{"x":-Infinity}', "\ufeff{}", '{"n":1e999}', '{"t":"社区"}', "[1,2,", "",
])
def test_same_answer_as_the_full_walk(text):
    assert _reason(text) == _reference(text)


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
                    max_leaves=40))
def test_any_encoded_value_gets_the_same_answer(value):
    for text in (json.dumps(value), json.dumps(value, ensure_ascii=False)):
        assert _reason(text) == _reference(text)
