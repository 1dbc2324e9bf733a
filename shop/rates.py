"""Rates of the rate limits: ``COUNT/PERIOD`` (no Django here: the settings check them)."""

from __future__ import annotations

import re
from dataclasses import dataclass

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([smhd])\s*$")


@dataclass(frozen=True)
class Rate:
    count: int
    period_s: int

    @classmethod
    def parse(cls, text: str) -> Rate:
        """``"10/15m"`` is 10 per 15 minutes; units s, m, h, d. Raises ``ValueError``."""
        match = _RATE.match(text)
        if match is None or int(match[1]) < 1 or match[2] == "0" or match[2].startswith("0"):
            raise ValueError(f"{text!r} is not COUNT/PERIOD, e.g. 10/m, 100/h or 10/15m")
        return cls(count=int(match[1]), period_s=int(match[2] or 1) * _UNITS[match[3]])
