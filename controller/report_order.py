"""Which of two reports of one kiosk's retained state is the newer: device statuses and config
reports, whichever controller instance handles them (docs/scale-out.md).

Several instances share the kiosks' topics, so two reports a kiosk published a moment apart may be
handled in the reverse order. Each report carries the kiosk's ``ts`` (its clock, raised so it never
goes back within one run of the agent) and that run's ``boot_id``. Within one boot ``ts`` orders.
The agent keeps that clock in its journal, so ``ts`` orders across boots too; where it could still
lie (a kiosk whose clock stepped back and whose journal was lost), the boot decides first: the
kiosk's current boot is the one of its newest birth applied (ordered by the connection stamp), and
a report of the current boot is newer than one of any other boot. A report of a boot that is not
the current one may be older or newer (its birth may not be applied yet): ``ts`` decides. Pure; no I/O.
"""

from __future__ import annotations

from typing import Any


def superseded(held: dict[str, Any] | None, ts: float | None, boot_id: str, current_boot: str) -> bool:
    """True when a report stamped ``ts``/``boot_id`` is older than ``held`` (the stored report,
    with the ``ts``/``boot_id`` it carried). A report or a held one without ``ts`` (a kiosk older
    than the field) is never superseded: it is applied as before."""
    if not isinstance(held, dict):
        return False
    held_ts, held_boot = held.get("ts"), held.get("boot_id") or ""
    if ts is None or not isinstance(held_ts, int | float) or isinstance(held_ts, bool):
        return False
    if boot_id and current_boot and boot_id == current_boot != held_boot:
        return False  # the kiosk's current boot: newer than anything of another boot
    return ts < held_ts
