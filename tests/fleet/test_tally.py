"""The controller's counters (``controller.tally``): a transaction's counts are kept once, when it
commits; what other threads counted meanwhile is never lost."""

from __future__ import annotations

import threading

from controller.tally import Tally


def test_a_transactions_counts_are_kept_once_when_it_commits_and_the_others_are_never_lost():
    tally = Tally({"received": 0})
    written: list[dict[str, int]] = []
    tally.add("rejected")  # before: the MQTT thread's, say
    for committed in (False, True):  # the same batch: rolled back (a lost race), then done again
        tally.open()
        tally.add("received", 3)
        other = threading.Thread(target=tally.add, args=("svc_refused:busy",))
        other.start()
        other.join()
        tally.write(written.append)
        tally.settle(committed=committed)
    # Rolled back: its 3 were forgotten, what it took of the others' written again next time.
    assert written == [{"received": 3, "rejected": 1, "svc_refused:busy": 1},
                       {"received": 3, "rejected": 1, "svc_refused:busy": 2}]
    assert tally.counts == {"received": 3, "rejected": 1, "svc_refused:busy": 2}
    assert tally.unsaved == {}


def test_outside_a_transaction_the_worker_counts_at_once():
    tally = Tally({})
    tally.add("deferred", 2)
    assert tally.counts == {"deferred": 2} and tally.unsaved == {"deferred": 2}


def test_names_include_the_open_transactions_on_its_thread_only():
    tally = Tally({})
    tally.add("refused_version:2")
    tally.open()
    tally.add("refused_version:3")
    seen: list[set[str]] = []
    other = threading.Thread(target=lambda: seen.append(tally.names("refused_version:")))
    other.start()
    other.join()
    assert tally.names("refused_version:") == {"refused_version:2", "refused_version:3"}
    assert seen == [{"refused_version:2"}]
