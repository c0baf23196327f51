"""What JSON text may carry but no store, page or signature check can hold, refused at parse.

Python's ``json`` accepts ``NaN``/``Infinity`` (not JSON numbers; they break pages and APIs
later), ``"\\ud800"`` escapes (a lone UTF-16 surrogate: a str that UTF-8 cannot encode, so
SQLite refuses it at write time) and nesting until it runs out of stack. Every payload from
the network goes through ``loads`` here; each problem is a RemoteProtocolError naming it.
"""

from __future__ import annotations

import json
from typing import Any

from foundation.errors import RemoteProtocolError

MAX_DEPTH = 32  # nesting deeper than this is refused: no payload of the contract needs more


def loads(text: str) -> Any:
    """``json.loads`` without non-numbers, then ``check_value``. JSONDecodeError passes through."""
    if text.startswith("\ufeff"):  # as json.loads says it
        raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
    try:
        value = _DECODER.decode(text)
    except RecursionError:
        raise RemoteProtocolError(f"payload nesting exceeds {MAX_DEPTH} levels") from None
    if not _plainly_fine(text):
        check_value(value)
    return value


def _refuse_constant(name: str) -> Any:
    raise RemoteProtocolError(f"payload holds {name}, which is not a JSON number")


# One decoder for every payload: ``json.loads`` with ``parse_constant`` builds a new one per call,
# which cost the controller's ingest more than the decoding itself.
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)


def _plainly_fine(text: str) -> bool:
    """True when the text itself shows that ``check_value`` cannot refuse what it decodes to (the
    common case, decided in C-level string scans instead of a walk over every value): fewer
    brackets than ``MAX_DEPTH`` cannot nest too deep, and without a ``\\u`` escape every decoded
    string is a piece of ``text``, so if ``text`` encodes as UTF-8 none holds a lone surrogate."""
    if text.count("{") + text.count("[") >= MAX_DEPTH or "\\u" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_value(value: Any) -> None:
    """Refuse lone surrogates in strings and keys, and nesting deeper than ``MAX_DEPTH``."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise RemoteProtocolError(f"payload nesting exceeds {MAX_DEPTH} levels")
        if isinstance(item, dict):
            for k, v in item.items():
                _check_text(k)
                stack.append((v, depth + 1))
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
        elif isinstance(item, str):
            _check_text(item)


def _check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise RemoteProtocolError(f"payload string {text[:32].encode('utf-8', 'backslashreplace').decode()!r} "
                                  "holds a lone UTF-16 surrogate") from None
