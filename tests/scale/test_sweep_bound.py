"""The lease holder's liveness sweep at fleet size: a bounded number of kiosk locks per transaction.

Found by the 100,000-kiosk fleet benchmark (two instances on PostgreSQL): once instances fell
behind, ~26,000 kiosks were due for the sweep at once and ``refresh_for_jobs`` took one advisory
lock per due kiosk in one transaction: PostgreSQL's lock table (``max_locks_per_transaction`` 64
x connections) ran out ("out of shared memory"), the singleton jobs failed every second and never
ran again (no sweep, no queued operator commands sent).
"""

from __future__ import annotations

import time

from controller import fleet_share, handlers, store_pg
from controller.store_pg import PgConnection

DUE = 8000  # more than the default lock table holds (64 x 100 connections = 6,400)


def test_the_sweep_takes_the_oldest_due_kiosks_in_bounded_rounds(postgres_url):
    conn = PgConnection(postgres_url)
    try:
        store_pg.migrate(conn)
        now = time.time()
        with conn.raw.transaction():
            conn.executemany("INSERT INTO kiosks (kiosk_id, state, last_seen, state_since) VALUES (?, 'online', ?, ?)",
                             [(f"K-SW-{i:05d}", now - 1000 - i, now - 2000) for i in range(DUE)])
        st = handlers.FleetState(telemetry_period=30.0, stale_after_periods=3)
        swept: set[str] = set()
        rounds = 0
        while len(swept) < DUE and rounds < DUE // fleet_share.SWEEP_MAX + 2:
            rounds += 1
            with conn.raw.transaction():
                fresh = fleet_share.begin(st)
                fleet_share.refresh_for_jobs(st, conn, now, lambda cmd: b"", fresh)
                assert 0 < len(st.kiosks) <= fleet_share.SWEEP_MAX
                if rounds == 1:  # the longest silent first
                    assert f"K-SW-{DUE - 1:05d}" in st.kiosks
                st, _ = handlers.tick(st, now)
                conn.executemany("UPDATE kiosks SET state = ? WHERE kiosk_id = ?",
                                 [(st.kiosks[k]["state"], k) for k in st.dirty])
                swept |= st.dirty
        assert len(swept) == DUE
        assert conn.execute("SELECT COUNT(*) FROM kiosks WHERE state = 'stale'").fetchone()[0] == DUE
    finally:
        conn.close()
