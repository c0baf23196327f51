"""Report CSV cells that a spreadsheet would run as formulas are escaped (issue 14, item 7)."""

from __future__ import annotations

import csv
import io

from controller.store import Store
from controller.web import reports

DAY = 1773100800.0  # 2026-03-10


class _Ctx:
    def __init__(self, data_dir, now):
        self.db = data_dir  # the fleet database the report reads (a data folder: its SQLite store)
        self.clock = lambda: now


def test_formula_cells_are_escaped_and_numbers_kept(tmp_path):
    Store(tmp_path).close()
    rep = reports.build(_Ctx(tmp_path, DAY), reports.parse_period({}, DAY))
    evil = ["=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"]
    rep["usage"] = [{"service": s, "count": -1} for s in evil]
    rows = list(csv.reader(io.StringIO(reports.to_csv(rep))))
    usage = [r for r in rows if r[0] == "usage"]
    assert [r[1] for r in usage] == ["'" + s for s in evil]
    assert {r[2] for r in usage} == {"-1"}  # a negative number is a number, not a formula
