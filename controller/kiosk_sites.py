"""Where a kiosk stands: its site comes from its enrolment record, never from what it claims.

A kiosk's birth message carries a ``site``; a captured kiosk could claim any site and so draw
queue tickets, site config and residents' requests of another community. The controller
therefore takes the site from the record made when the kiosk's certificate was issued: the
fleet CA's certificate index (``DIR/ca/issued.sqlite3``, when the controller knows the fleet
folder: online enrolment and offline ``kiosk-provision issue`` alike), else the enrolment
token the kiosk used (``enrol_tokens`` in the controller's own database). A kiosk without any
record (a fleet run without enrolment, e.g. the plain-broker tests) keeps the first site it
claimed; a later, different claim is refused and counted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from controller import sql_dialect
from provisioning import fleet_ca


class SiteRegistry:
    def __init__(self, fleet_dir: str | Path | None) -> None:
        self.fleet_dir = Path(fleet_dir) if fleet_dir else None
        self._index: fleet_ca.CertIndex | None = None
        self._tokens_table = False

    def enrolled_site(self, conn: Any, kiosk_id: str, now: float) -> str | None:
        """The site of the kiosk's enrolment record, or None when it has none."""
        if self.fleet_dir is not None:
            if self._index is None:
                self._index = fleet_ca.CertIndex(fleet_ca.Layout(self.fleet_dir).index)
            active = self._index.active(kiosk_id, now)
            if active:
                return active[0]["site"]
        # Looked up in the catalogue, not tried and caught: on PostgreSQL a failed statement would
        # abort the controller's transaction. Once there, the table stays.
        if not self._tokens_table:
            self._tokens_table = "enrol_tokens" in sql_dialect.tables(conn)
            if not self._tokens_table:  # no enrolment ever ran against this database
                return None
        row = conn.execute("SELECT site FROM enrol_tokens WHERE used_by=? ORDER BY used_at DESC LIMIT 1",
                           (kiosk_id,)).fetchone()
        return row[0] if row else None

    def site_for(self, conn: Any, kiosk_id: str, claimed: object, current: str,
                 now: float) -> tuple[str, bool]:
        """The site to file for a birth message claiming ``claimed``, and whether the claim was refused."""
        site = self.enrolled_site(conn, kiosk_id, now)
        if site is None:
            site = current or (str(claimed)[:64] if isinstance(claimed, str) else "")
        return site, claimed is not None and claimed != site

    def close(self) -> None:
        if self._index is not None:
            self._index.close()
