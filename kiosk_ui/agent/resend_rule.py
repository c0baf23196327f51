"""When a kiosk sends its unacknowledged events again, judged from the controller's presence.

Pure decisions, no I/O: the agent (``agent.Agent``) and the reconnect-storm benchmark's simulated
kiosks both call these, so the benchmark measures the rule the fleet runs. ``presence`` is the
controller's retained presence as last read on this connection: ``True`` online, ``False``
offline, ``None`` not read yet (a fresh connection). ``queued_while_away`` is the flag of the
online presence (``contract.payloads.controller_queued_while_away``, docs/mqtt.md): the broker
kept the controller's session, so what was sent while it was away reaches it now.
"""

from __future__ import annotations


def came_back(previous: bool | None, online: bool) -> bool:
    """The controller's presence turned online after saying offline."""
    return online and previous is False


def send_again_at_once(previous: bool | None, online: bool, queued_while_away: bool = False) -> bool:
    """The controller came back: whatever it lost meanwhile, it gets again now rather than after
    the acknowledgement wait. Not when its presence says the broker queued it all for it (one
    controller with a persistent session): that would only send each event twice. A presence
    without the flag (several instances with clean sessions, an older controller) gets it again."""
    return came_back(previous, online) and not queued_while_away


def restart_wait(previous: bool | None, online: bool, queued_while_away: bool = False) -> bool:
    """The controller came back and the broker queued what was sent meanwhile: the wait for its
    acknowledgements starts again now (it is working through the queue), so a timed re-send
    (``send_again_when_due``) follows only if it still says nothing after a whole wait."""
    return came_back(previous, online) and queued_while_away


def send_again_when_due(presence: bool | None, oldest_sent: float, now: float, wait: float) -> bool:
    """No acknowledgement for ``wait`` seconds. Not while the controller says it is offline: no
    one would acknowledge, and its coming back triggers the re-send anyway."""
    return presence is not False and oldest_sent <= now - wait
