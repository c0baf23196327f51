"""Fictitious but well-formed identities for the card simulators.

Numbers have a valid GB 11643 check digit (ISO 7064 MOD 11-2) and a birth date that matches the
number; names say plainly that they are test data (测试居民一, ...). Three card types: resident
ID card, Hong Kong/Macao/Taiwan residence permit (``J``) and 2023 foreigner's permanent
residence ID card (``Y``).
"""

from __future__ import annotations

import random

from device_drivers import samv

WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
CHECK = "10X98765432"


def check_digit(first17: str) -> str:
    """GB 11643-1999 check character (ISO 7064 MOD 11-2) of the first 17 digits."""
    if len(first17) != 17 or not first17.isdigit():
        raise ValueError("need exactly 17 digits")
    return CHECK[sum(int(d) * w for d, w in zip(first17, WEIGHTS, strict=True)) % 11]


def number(region: str, birth: str, seq: str) -> str:
    body = region + birth + seq
    return body + check_digit(body)


def is_valid_number(n: str) -> bool:
    return len(n) == 18 and n[:17].isdigit() and check_digit(n[:17]) == n[17].upper()


# Fictitious photo: a tag and a counter, the size of a real WLT block, not a WLT image.
def fake_wlt(tag: str) -> bytes:
    head = f"FICTITIOUS-WLT {tag} ".encode()
    return (head + bytes(range(256)) * 4)[:1024]


PROFILES: dict[str, dict] = {
    "resident-1": {"flag": "resident", "values": {
        "name": "测试居民一", "sex": "1", "nation": "01", "birth": "19900307",
        "address": "广东省广州市天河区测试街道演示路1号", "id_number": number("440106", "19900307", "123"),
        "authority": "广州市公安局天河分局", "valid_from": "20200101", "valid_until": "20400101"}},
    "resident-2": {"flag": "resident", "values": {
        "name": "测试居民二", "sex": "2", "nation": "15", "birth": "19851120",
        "address": "广东省深圳市南山区样例社区演示大道88号", "id_number": number("440305", "19851120", "246"),
        "authority": "深圳市公安局南山分局", "valid_from": "20150601", "valid_until": "长期"}},
    # Old enough for elderly mode by age (a kiosk's elderly_auto_age, 65 for example).
    "elder-1": {"flag": "resident", "values": {
        "name": "测试长者一", "sex": "2", "nation": "01", "birth": "19500615",
        "address": "广东省广州市越秀区测试街道样例巷3号", "id_number": number("440104", "19500615", "328"),
        "authority": "广州市公安局越秀分局", "valid_from": "20100101", "valid_until": "长期"}},
    "hmt-1": {"flag": "J", "values": {
        "name": "测试港澳居民", "sex": "1", "birth": "19920815",
        "address": "广东省珠海市香洲区测试路2号", "id_number": number("810000", "19920815", "017"),
        "authority": "珠海市公安局", "valid_from": "20210301", "valid_until": "20260301",
        "pass_number": "H00000000", "issue_count": "01"}},
    "foreigner-1": {"flag": "Y", "values": {
        "name": "测试外籍居民", "sex": "2", "issue_count": "00", "birth": "19800101",
        "english_name": "TEST, RESIDENT ONE", "id_number": number("944840", "19800101", "001"),
        "authority": "国家移民管理局", "valid_from": "20240101", "valid_until": "20340101",
        "nationality": "USA"}},
}


GIVEN = "甲乙丙丁戊己庚辛壬癸子丑寅卯辰巳午未申酉戌亥"


def fictitious(seed: int) -> dict:
    """A fictitious resident made from ``seed`` (``place_card`` with ``"seed"``): data that is in
    no source file, so a search of a process's memory for it finds only what the process read."""
    rng = random.Random(seed)
    birth = f"{rng.randrange(1965, 2000)}{rng.randrange(1, 13):02d}{rng.randrange(1, 29):02d}"
    return {"flag": "resident", "values": {
        "name": "测试" + "".join(rng.choice(GIVEN) for _ in range(2)), "sex": str(rng.randrange(1, 3)),
        "nation": "01", "birth": birth, "address": f"广东省广州市天河区测试街道演示路{rng.randrange(1, 999)}号",
        "id_number": number("440106", birth, f"{rng.randrange(1000):03d}"), "authority": "广州市公安局天河分局",
        "valid_from": "20200101", "valid_until": "20400101"}}


def card(profile: str) -> tuple[bytes, bytes]:
    """(256-byte text block, 1024-byte opaque photo) for a named fictitious card."""
    if profile.startswith("seed-") and profile[5:].isdigit():
        p = fictitious(int(profile[5:]))
        return samv.encode_text(p["flag"], p["values"]), fake_wlt(profile)
    if profile not in PROFILES:
        raise KeyError(f"unknown card profile {profile!r}; known: {', '.join(PROFILES)} or seed-N")
    p = PROFILES[profile]
    return samv.encode_text(p["flag"], p["values"]), fake_wlt(profile)
