"""Boot counter and safe mode after repeated short boots.

The record ``{"boots": total, "short": consecutive short boots}`` lives in flash through the
HAL's store. Each boot counts itself as short until it has run SHORT_MS; when the previous
LIMIT boots were all short (a crash loop, e.g. a bad sensor wedging the loop), this boot runs
in safe mode: only the link, the host watchdog and the relays.
"""

SHORT_MS = 60000
LIMIT = 3


class BootGuard:
    def __init__(self, store, short_ms: int = SHORT_MS, limit: int = LIMIT) -> None:
        self._store = store
        self.short_ms = short_ms
        self.limit = limit
        self.boots = 0
        self.short = 0
        self.safe = False
        self.stable = False

    def begin(self) -> bool:
        """Count this boot; returns True for safe mode."""
        rec = None
        try:
            rec = self._store.load()
        except (OSError, ValueError):
            rec = None
        if not isinstance(rec, dict):
            rec = {}
        boots = rec.get("boots", 0)
        short = rec.get("short", 0)
        if not isinstance(boots, int) or not isinstance(short, int):
            boots = short = 0
        self.safe = short >= self.limit
        self.boots = boots + 1
        self.short = short + 1
        self._save()
        return self.safe

    def tick(self, uptime_ms: int) -> None:
        if not self.stable and uptime_ms >= self.short_ms:
            self.stable = True
            self.short = 0
            self._save()

    def _save(self) -> None:
        try:
            self._store.save({"boots": self.boots, "short": self.short})
        except OSError:
            # A worn or full flash must not stop the board from supervising.
            pass
