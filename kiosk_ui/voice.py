"""Spoken prompts through espeak-ng (Mandarin voice), where installed. Never blocks the UI."""

from __future__ import annotations

import logging
import shutil
import subprocess

log = logging.getLogger(__name__)
VOICES = {"zh-CN": "cmn", "zh-HK": "yue", "en": "en"}


class Voice:
    def __init__(self, enabled: bool = True) -> None:
        self.exe = shutil.which("espeak-ng") if enabled else None
        self._proc: subprocess.Popen | None = None

    @property
    def available(self) -> bool:
        return self.exe is not None

    def say(self, text: str, lang: str = "zh-CN") -> None:
        if not self.exe or not text:
            return
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()  # a new prompt replaces the old one
        try:
            self._proc = subprocess.Popen([self.exe, "-v", VOICES.get(lang, "cmn"), "-s", "140", text],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except OSError as exc:
            log.warning("voice prompt failed: %s", exc)
            self.exe = None
