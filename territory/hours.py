"""Clock times, weekday sets and opening hours: parsing and a canonical text form.

Opening hours are stored as a small table of distinct weekly profiles (``WeekHours``) and one
integer code per account, so 10^6 accounts with a handful of distinct opening patterns cost a
few MB, and each distinct text is parsed once.

Accepted text forms (case-insensitive, Chinese weekday names and full-width punctuation too)::

    09:00-17:00                                 same window on the default working days
    09:00-12:00,14:00-18:00                     several windows a day
    mon-fri 09:00-12:00,14:00-18:00; sat 09:00-12:00
    Mo-Fr 08:30-17:30; Sa,Su closed
    周一至周五 09:00-17:00; 周六 09:00-12:00
    24/7                                        always open
    closed                                      never open

Times are minutes from midnight; ``24:00`` is accepted as the end of the day.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "WEEKDAYS",
    "WeekHours",
    "format_clock",
    "format_days",
    "parse_clock",
    "parse_days",
    "parse_windows",
]

WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

_DAY_ALIASES: dict[str, int] = {}
for _i, _names in enumerate(
    [
        ("mon", "monday", "mo", "周一", "星期一", "礼拜一", "1"),
        ("tue", "tuesday", "tu", "周二", "星期二", "礼拜二", "2"),
        ("wed", "wednesday", "we", "周三", "星期三", "礼拜三", "3"),
        ("thu", "thursday", "th", "周四", "星期四", "礼拜四", "4"),
        ("fri", "friday", "fr", "周五", "星期五", "礼拜五", "5"),
        ("sat", "saturday", "sa", "周六", "星期六", "礼拜六", "6"),
        ("sun", "sunday", "su", "周日", "星期日", "周天", "星期天", "礼拜天", "礼拜日", "7"),
    ]
):
    for _n in _names:
        _DAY_ALIASES[_n] = _i

_FULLWIDTH = str.maketrans({"：": ":", "，": ",", "；": ";", "－": "-", "～": "-", "~": "-",
                            "–": "-", "—": "-", "、": ","})
# Optional ":00" seconds: spreadsheets export time cells as "08:30:00".
_CLOCK_RE = re.compile(r"^\s*(\d{1,2})(?::|h|\.)?(\d{2})?(?::(\d{2}))?\s*$")


def parse_clock(text: str | int | float) -> int:
    """Minutes from midnight of a clock time (``"08:30"``, ``"8:30"``, ``"0830"``, ``"24:00"``).

    ``"08:30:00"`` is accepted (as spreadsheets export times) but the seconds must be zero.
    A number is taken as minutes already; text is always a clock time (``"510"`` is 05:10).

    Raises
    ------
    ValueError
        The text is not a time of day between 00:00 and 24:00.
    """
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text)
        if not (0 <= value <= 24 * 60) or value != value:
            raise ValueError(f"{text!r} is not a time of day in minutes (0-1440)")
        return round(value)
    s = str(text).translate(_FULLWIDTH).strip()
    if len(s) == 4 and s.isdigit():
        s = s[:2] + ":" + s[2:]
    m = _CLOCK_RE.match(s)
    if not m:
        raise ValueError(f"{text!r} is not a time of day like '08:30'")
    hours, minutes = int(m.group(1)), int(m.group(2) or 0)
    if m.group(3) is not None and (m.group(2) is None or int(m.group(3))):
        raise ValueError(f"{text!r} has seconds; give whole minutes like '08:30'")
    if minutes >= 60 or hours > 24 or (hours == 24 and minutes):
        raise ValueError(f"{text!r} is not a time of day between 00:00 and 24:00")
    return hours * 60 + minutes


def format_clock(minutes: float) -> str:
    """``"HH:MM"`` for minutes from midnight (rounded to the minute; may pass 24:00)."""
    m = round(float(minutes))
    return f"{m // 60:02d}:{m % 60:02d}"


def parse_windows(text: str) -> tuple[tuple[int, int], ...]:
    """Windows ``((open, close), ...)`` in minutes from ``"09:00-12:00,14:00-18:00"``.

    ``""``, ``"closed"`` and ``"-"`` give no window. Overlapping or touching windows are merged;
    the result is sorted.

    Raises
    ------
    ValueError
        A window does not read as ``start-end`` or ends before it starts.
    """
    s = str(text).translate(_FULLWIDTH).strip().lower()
    if s in ("", "closed", "off", "-", "休息", "关闭", "none", "nan"):
        return ()
    if s in ("24h", "24/7", "00:00-24:00", "全天"):
        return ((0, 24 * 60),)
    out: list[tuple[int, int]] = []
    for part in s.split(","):
        part = part.strip()
        if not part:
            continue
        pieces = part.split("-")
        if len(pieces) != 2:
            raise ValueError(f"{part!r} is not a window like '09:00-17:00'")
        a, b = parse_clock(pieces[0]), parse_clock(pieces[1])
        if b <= a:
            raise ValueError(f"window {part!r} ends before it starts")
        out.append((a, b))
    out.sort()
    merged: list[tuple[int, int]] = []
    for a, b in out:
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return tuple(merged)


def parse_days(text: str | Iterable[int]) -> tuple[int, ...]:
    """Weekday numbers (0 = Monday) from ``"mon-fri"``, ``"Mo,We,Fr"``, ``"周一至周五"``, ``"1-5"``.

    Raises
    ------
    ValueError
        A name is not a weekday.
    """
    if not isinstance(text, str):
        days = sorted({int(d) for d in text})
        if any(d < 0 or d > 6 for d in days):
            raise ValueError(f"weekday numbers must be 0 (Monday) to 6 (Sunday), got {days}")
        return tuple(days)
    s = text.translate(_FULLWIDTH).strip().lower().replace("至", "-").replace("到", "-")
    if s in ("", "none"):
        return ()
    if s in ("all", "daily", "every day", "每天", "mo-su"):
        return tuple(range(7))
    result: set[int] = set()
    for part in re.split(r"[,\s]+", s):
        if not part:
            continue
        if "-" in part:
            a, b = part.split("-", 1)
            i, j = _day(a), _day(b)
            k = i
            while True:
                result.add(k)
                if k == j:
                    break
                k = (k + 1) % 7
        else:
            result.add(_day(part))
    return tuple(sorted(result))


def _day(name: str) -> int:
    key = name.strip().lower()
    if key not in _DAY_ALIASES:
        raise ValueError(f"{name!r} is not a weekday (use mon..sun, Mo..Su or 周一..周日)")
    return _DAY_ALIASES[key]


def format_days(days: Sequence[int]) -> str:
    """Compact text of weekday numbers: ``(0,1,2,3,4)`` -> ``"mon-fri"``."""
    days = sorted(set(days))
    if not days:
        return "none"
    runs: list[list[int]] = []
    for d in days:
        if runs and d == runs[-1][-1] + 1:
            runs[-1].append(d)
        else:
            runs.append([d])
    parts = []
    for r in runs:
        if len(r) >= 3:
            parts.append(f"{WEEKDAYS[r[0]]}-{WEEKDAYS[r[-1]]}")
        else:
            parts.extend(WEEKDAYS[d] for d in r)
    return ",".join(parts)


# A clause is "<days> <windows>": the days are everything before the first digit or
# "closed"-type word, so "Sa, Su closed" and "周一至周五09:00-17:00" read as well.
_SPEC_SPLIT = re.compile(
    r"^\s*([^\d]+?)\s*((?:\d|closed\b|off\b|休息|关闭|全天).*)$", re.IGNORECASE)


@dataclass(frozen=True)
class WeekHours:
    """Opening windows for each weekday (index 0 = Monday), in minutes from midnight."""

    days: tuple[tuple[tuple[int, int], ...], ...]

    def __post_init__(self) -> None:
        if len(self.days) != 7:
            raise ValueError("WeekHours needs exactly 7 weekdays")

    @classmethod
    def parse(cls, text: str, default_days: Sequence[int] = (0, 1, 2, 3, 4)) -> WeekHours:
        """Parse one of the text forms in the module docstring.

        A spec with no weekday names applies to ``default_days`` and leaves the others closed.

        Raises
        ------
        ValueError
            With what could not be read.
        """
        s = str(text).translate(_FULLWIDTH).strip()
        low = s.lower()
        if low in ("24/7", "always"):
            return cls(tuple(((0, 1440),) for _ in range(7)))
        if low in ("closed", "never"):
            return cls(tuple(() for _ in range(7)))
        days: list[tuple[tuple[int, int], ...]] = [() for _ in range(7)]
        clauses = [c.strip() for c in s.split(";") if c.strip()]
        if not clauses:
            raise ValueError("empty opening hours (write 'closed' if the account never opens)")
        for clause in clauses:
            m = _SPEC_SPLIT.match(clause)
            if m and not clause[0].isdigit():
                which = parse_days(m.group(1).replace(" ", ""))
                windows = parse_windows(m.group(2))
            else:
                which = tuple(default_days)
                windows = parse_windows(clause)
            for d in which:
                days[d] = windows
        return cls(tuple(days))

    @classmethod
    def uniform(cls, windows: Sequence[tuple[int, int]], days: Sequence[int] = (0, 1, 2, 3, 4)
                ) -> WeekHours:
        """The same windows on ``days``, closed otherwise."""
        w = tuple((int(a), int(b)) for a, b in windows)
        return cls(tuple(w if d in set(days) else () for d in range(7)))

    def on(self, weekday: int) -> tuple[tuple[int, int], ...]:
        """Windows on a weekday (0 = Monday)."""
        return self.days[weekday]

    def open_days(self) -> tuple[int, ...]:
        """Weekdays with at least one window."""
        return tuple(d for d in range(7) if self.days[d])

    def overlap_minutes(self, weekday: int, start: int, end: int) -> int:
        """Minutes of ``[start, end)`` during which the account is open on ``weekday``."""
        return sum(max(0, min(b, end) - max(a, start)) for a, b in self.days[weekday])

    def __str__(self) -> str:
        groups: dict[tuple[tuple[int, int], ...], list[int]] = {}
        for d, w in enumerate(self.days):
            if w:
                groups.setdefault(w, []).append(d)
        if not groups:
            return "closed"
        parts = []
        for w, ds in sorted(groups.items(), key=lambda kv: kv[1][0]):
            text = ",".join(f"{format_clock(a)}-{format_clock(b)}" for a, b in w)
            parts.append(f"{format_days(ds)} {text}")
        return "; ".join(parts)
