"""Where a kiosk stands: its site comes from its enrolment record, never from what it claims.

A kiosk's birth message carries a ``site``; a captured kiosk could claim any site and so draw
queue tickets, site config and residents' requests of another community. The controller
therefore takes the site from the record made when the kiosk's certificate was issued, read from
the fleet database (so every controller instance files a kiosk alike, docs/scale-out.md):

* ``kiosk_certs``: the fleet CA's certificate index (``DIR/ca/issued.sqlite3``) as the fleet
  database knows it. The enrolment endpoint writes a certificate there when it issues or retires
  one; a controller that knows the fleet folder copies the index there at start and whenever the
  index changed (offline ``kiosk-provision issue`` and ``revoke`` write only the index). Copies
  only ever add certificates and revocations (a revocation never goes back), so instances with
  copies of the folder of different ages cannot undo each other;
* else the enrolment token the kiosk used (``enrol_tokens``).

A kiosk without any record (a fleet run without enrolment, e.g. the plain-broker tests) keeps
the first site it claimed; a later, different claim is refused and counted.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from controller import sql_dialect
from provisioning import fleet_ca

log = logging.getLogger(__name__)

# In the fleet database beside the enrolment tokens (SQLite: ``enrolment_service.SCHEMA``,
# PostgreSQL: ``pg_parts`` part ``enrolment``).
CERTS_COLUMNS = ("serial", "kiosk_id", "site", "not_before", "not_after", "revoked_at")
_UPSERT = ("INSERT INTO kiosk_certs (serial, kiosk_id, site, not_before, not_after, revoked_at) "
           "VALUES (?,?,?,?,?,?) ON CONFLICT (serial) DO UPDATE SET "
           "revoked_at = COALESCE(kiosk_certs.revoked_at, excluded.revoked_at)")


def copy_certs(conn: Any, rows: list[dict[str, Any]]) -> None:
    """Add certificate-index rows to the fleet database's ``kiosk_certs`` (in serial order, so two
    instances copying at once wait for each other instead of deadlocking)."""
    if rows:
        conn.executemany(_UPSERT, [tuple(r[c] for c in CERTS_COLUMNS)
                                   for r in sorted(rows, key=lambda r: r["serial"])])


def copy_kiosk(conn: Any, index: fleet_ca.CertIndex, kiosk_id: str) -> None:
    """The kiosk's certificates as ``index`` has them now, into the fleet database."""
    copy_certs(conn, index.certs(kiosk_id))


class SiteRegistry:
    def __init__(self, fleet_dir: str | Path | None) -> None:
        self.fleet_dir = Path(fleet_dir) if fleet_dir else None
        self._index: fleet_ca.CertIndex | None = None
        self._copied: int | None = None  # the index's data_version when last copied
        self._rows: dict[str, Any] = {}  # serial -> revoked_at as last copied (only changes are copied again)
        self._tables = False

    def _have_tables(self, conn: Any) -> bool:
        # Looked up in the catalogue, not tried and caught: on PostgreSQL a failed statement would
        # abort the controller's transaction. Once there, the tables stay.
        if not self._tables:
            self._tables = {"kiosk_certs", "enrol_tokens"} <= sql_dialect.tables(conn)
        return self._tables

    def pending(self) -> tuple[int, list[dict[str, Any]]] | None:
        """What of the fleet folder's certificate index is not yet in the fleet database: ``(the
        index's version, rows)`` when the index changed since the last :meth:`copied` (another
        process issued or revoked: SQLite's ``data_version`` moved), else None. The caller copies
        the rows (:func:`copy_certs`) in a transaction of its own, then calls :meth:`copied`."""
        if self.fleet_dir is None:
            return None
        if self._index is None:
            self._index = fleet_ca.CertIndex(fleet_ca.Layout(self.fleet_dir).index)
        version = self._index.conn.execute("PRAGMA data_version").fetchone()[0]
        if version == self._copied:
            return None
        return version, [r for r in self._index.certs()
                         if r["serial"] not in self._rows or self._rows[r["serial"]] != r["revoked_at"]]

    def copied(self, version: int, rows: list[dict[str, Any]]) -> None:
        """The rows of :meth:`pending` are committed in the fleet database."""
        self._rows.update((r["serial"], r["revoked_at"]) for r in rows)
        self._copied = version
        if rows:
            log.info("certificate index copied to the fleet database", extra={"fields": {"certificates": len(rows)}})

    def enrolled_site(self, conn: Any, kiosk_id: str, now: float) -> str | None:
        """The site of the kiosk's enrolment record in the fleet database, or None when it has none."""
        if not self._have_tables(conn):  # no enrolment ever ran against this database
            return None
        row = conn.execute("SELECT site FROM kiosk_certs WHERE kiosk_id=? AND revoked_at IS NULL AND not_after > ? "
                           "ORDER BY not_before DESC LIMIT 1", (kiosk_id, now)).fetchone()
        if row is None:
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
