"""The controller's store of uploaded release pieces: one append per offset, and a size bound."""

from __future__ import annotations

import hashlib

import pytest

from contract import release as R
from controller.web import release_uploads as U
from tests.support.together import at_once

SHA = hashlib.sha256(b"x").hexdigest()


def test_two_uploads_racing_at_one_offset_append_once(tmp_path):
    piece = b"p" * 65536
    sent = at_once(lambda _: U.append(tmp_path, SHA, 0, piece), range(8))
    outcomes = [o.size if isinstance(o, U.WrongOffset) else o for o in sent]
    assert sorted(outcomes) == [65536] * 8  # one appended; seven were told the server has 65,536 bytes
    assert U.size(tmp_path, SHA) == 65536


def test_a_file_cannot_grow_past_the_largest_size_a_manifest_may_name(tmp_path, monkeypatch):
    monkeypatch.setattr(R, "MAX_FILE_BYTES", 100)
    assert U.append(tmp_path, SHA, 0, b"a" * 60) == 60
    with pytest.raises(U.TooLarge, match="at most 100 bytes"):
        U.append(tmp_path, SHA, 60, b"b" * 41)
    assert U.size(tmp_path, SHA) == 60  # nothing of the refused piece was written
    assert U.append(tmp_path, SHA, 60, b"b" * 40) == 100


def test_a_manifest_naming_a_file_larger_than_the_bound_is_refused():
    doc = R.make_manifest("kiosk", "2.0.0", {"big.whl": {"sha256": SHA, "size": R.MAX_FILE_BYTES + 1}},
                          min_from_version="1.0.0", created=1, expires=2, key_id="rk-1")
    with pytest.raises(R.ReleaseRejected, match="size must be an integer"):
        R.parse_manifest(doc)
    doc["files"]["big.whl"]["size"] = R.MAX_FILE_BYTES
    assert R.parse_manifest(doc).total_size == R.MAX_FILE_BYTES
