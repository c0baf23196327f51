"""A resident's age from what their card says, for elderly mode that switches itself on.

The birth date comes from the card's own birth field (``YYYYMMDD``) or, failing that, from an
18-character ID number (GB 11643: characters 7-14 are the birth date). Today is the date in the
kiosk's time zone at ``now``: a resident turns 65 at local midnight, not at UTC midnight.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo


def _date(text: str) -> date | None:
    if len(text) != 8 or not text.isdigit():
        return None
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return None


def birth_date(birth: str, id_number: str) -> date | None:
    """The birth date on the card, else the one inside an 18-character ID number, else None."""
    found = _date(birth.strip())
    if found is None and len(id_number) == 18 and id_number[:17].isdigit():
        found = _date(id_number[6:14])
    return found


def age_on(born: date, today: date) -> int:
    """Whole years completed on ``today`` (someone born on 29 February has their birthday on 1 March)."""
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def is_elderly(birth: str, id_number: str, *, min_age: int, now: float, zone: str) -> bool:
    """Whether the card's holder is ``min_age`` or older today; never when off (0) or no date is known."""
    born = birth_date(birth, id_number)
    if min_age <= 0 or born is None:
        return False
    today = datetime.fromtimestamp(now, ZoneInfo(zone)).date()
    return born <= today and age_on(born, today) >= min_age
