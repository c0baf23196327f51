"""Find a CJK font so that Chinese text renders (Kivy's default Roboto has no Chinese glyphs)."""

from __future__ import annotations

from pathlib import Path

from foundation.errors import ConfigError

CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJKsc-Regular.otf",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
)


def find_cjk_font(extra: tuple[str, ...] = ()) -> str:
    for path in (*extra, *CANDIDATES):
        if Path(path).is_file():
            return path
    raise ConfigError(
        "no CJK font found; install fonts-wqy-microhei or fonts-noto-cjk (scripts/bootstrap does)",
        field="font",
    )
