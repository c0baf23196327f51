"""When a kiosk sends its unacknowledged events again, judged from the controller's presence.

Pure decisions, no I/O: the agent (``agent.Agent``) and the reconnect-storm benchmark's simulated
kiosks both call these, so the benchmark measures the rule the fleet runs. ``presence`` is the
controller's retained presence as last read on this connection: ``True`` online, ``False``
offline, ``None`` not read yet (a fresh connection).
"""

from __future__ import annotations


def send_again_at_once(previous: bool | None, online: bool) -> bool:
    """The controller came back (its presence turned online after saying offline): whatever it
    lost meanwhile, it gets again now rather than after the acknowledgement wait."""
    return online and previous is False


def send_again_when_due(presence: bool | None, oldest_sent: float, now: float, wait: float) -> bool:
    """No acknowledgement for ``wait`` seconds. Not while the controller says it is offline: no
    one would acknowledge, and its coming back triggers the re-send anyway."""
    return presence is not False and oldest_sent <= now - wait
