"""Queue tickets for the local centre while the controller is unreachable.

Numbers carry an ``L`` so staff can tell them apart; the counter per day and business is kept in
the kiosk's data folder so a restart does not hand out a number twice.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

PREFIX = {"general": "LA", "social": "LB", "civil": "LC"}


class OfflineTickets:
    def __init__(self, path: Path, *, clock=time.time) -> None:
        self.path = Path(path)
        self.clock = clock
        self._lock = threading.Lock()

    def take(self, counter: str) -> dict[str, Any]:
        if counter not in PREFIX:
            raise ValueError(f"unknown counter {counter!r}")
        day = time.strftime("%Y-%m-%d", time.localtime(self.clock()))
        with self._lock:
            try:
                state = json.loads(self.path.read_text(encoding="utf-8"))
            except (FileNotFoundError, json.JSONDecodeError):
                state = {}
            if state.get("day") != day:
                state = {"day": day, "seq": {}}
            seq = state["seq"].get(counter, 0) + 1
            state["seq"][counter] = seq
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(state), encoding="utf-8")
            os.replace(tmp, self.path)
        return {"number": f"{PREFIX[counter]}{seq:03d}", "counter": counter, "offline": True}
