"""A CronJob's `schedule` as Kubernetes reads it (robfig/cron's standard parser): five fields, or a macro.

Checked field by field so that an error says which field is wrong and what it accepts, and measured (the longest
time between two runs) so that monitoring knows when a last successful run is overdue. No Pulumi imports.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
DAY_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")


@dataclass(frozen=True)
class Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()  # names for low, low+1, ...

    def describe(self) -> str:
        named = f" or {self.names[0]}-{self.names[-1]}" if self.names else ""
        return f"{self.name} ({self.low}-{self.high}{named})"


FIELDS = (
    Field("minute", 0, 59),
    Field("hour", 0, 23),
    Field("day of month", 1, 31),
    Field("month", 1, 12, MONTH_NAMES),
    Field("day of week", 0, 6, DAY_NAMES),
)
EXAMPLE = "'0 3 * * *' (03:00 every day), '*/15 * * * MON-FRI', or a macro: " + ", ".join(sorted(set(MACROS) - {"@annually", "@midnight"}))


def _number(text: str, field: Field) -> int:
    if text.upper() in field.names:
        return field.low + field.names.index(text.upper())
    if not re.fullmatch(r"[0-9]+", text):
        raise ValueError(f"'{text}' is not a number{' or a name' if field.names else ''}")
    value = int(text)
    if not field.low <= value <= field.high:
        raise ValueError(f"{value} is outside {field.low}-{field.high}")
    return value


def _values(text: str, field: Field) -> set[int]:
    """The values one field matches: lists of `*`, `?`, numbers, names, ranges `a-b`, each with an optional `/step`."""
    values: set[int] = set()
    for part in text.split(","):
        base, slash, step_text = part.partition("/")
        if slash and not re.fullmatch(r"[0-9]+", step_text) or slash and int(step_text) == 0:
            raise ValueError(f"'{part}': the step after '/' must be a positive number")
        step = int(step_text) if slash else 1
        if base in ("*", "?"):
            low, high = field.low, field.high
        elif "-" in base:
            first, _, last = base.partition("-")
            low, high = _number(first, field), _number(last, field)
            if low > high:
                raise ValueError(f"'{base}' runs backwards; wrapping past the end is not cron: write two ranges, e.g. '{first}-{field.high},{field.low}-{last}'")
        elif base:
            low = _number(base, field)
            high = field.high if slash else low  # robfig: 'N/step' runs from N to the field's end
        else:
            raise ValueError(f"'{part}' is empty; remove the extra ','")
        values.update(range(low, high + 1, step))
    return values


@dataclass(frozen=True)
class Schedule:
    minutes: frozenset[int]
    hours: frozenset[int]
    days_of_month: frozenset[int]
    months: frozenset[int]
    days_of_week: frozenset[int]
    # Cron's own rule: with both day fields restricted, a day matches either; with one '*' (or '?'), only the other.
    day_of_month_any: bool
    day_of_week_any: bool

    def runs_on(self, day: datetime.date) -> bool:
        if day.month not in self.months:
            return False
        by_month_day = day.day in self.days_of_month
        by_week_day = (day.isoweekday() % 7) in self.days_of_week
        if self.day_of_month_any or self.day_of_week_any:
            return by_month_day and by_week_day
        return by_month_day or by_week_day

    def longest_gap_seconds(self) -> int:
        """The longest time between two consecutive runs, over eight years (leap days included; 29 February runs every
        four years). Wall-clock time: a daylight saving change adds or removes an hour, which callers allow for."""
        start = datetime.date(2024, 1, 1)
        times = sorted(hour * 60 + minute for hour in self.hours for minute in self.minutes)
        days = [offset for offset in range(8 * 366) if self.runs_on(start + datetime.timedelta(days=offset))]
        if not days or (len(days) == 1 and len(times) == 1):
            raise ValueError("runs less than twice in eight years")
        within_a_day = max((later - earlier for earlier, later in zip(times, times[1:])), default=0)
        between_days = max(((later - earlier) * 1440 - times[-1] + times[0] for earlier, later in zip(days, days[1:])), default=0)
        return max(within_a_day, between_days) * 60


def _unrestricted(text: str) -> bool:
    """robfig/cron's "star" field: some part is '*' or '?' without a step above 1 ('*/2' restricts)."""
    return any(re.fullmatch(r"[*?](/0*1)?", part) for part in text.split(","))


def parse(schedule: str) -> Schedule:
    """The schedule, or a ValueError naming the wrong field and what it accepts."""
    text = schedule.strip()
    if re.match(r"^(CRON_)?TZ=", text):
        raise ValueError(
            "a time zone inside the schedule (TZ=/CRON_TZ=) is refused by Kubernetes since 1.27; remove it and set "
            "'timeZone' instead (e.g. timeZone: Europe/Berlin)"
        )
    if text.startswith("@"):
        if text not in MACROS:
            raise ValueError(f"'{text}' is not a macro Kubernetes knows; use {EXAMPLE}")
        text = MACROS[text]
    parts = text.split()
    if len(parts) != len(FIELDS):
        raise ValueError(
            f"has {len(parts)} field(s); Kubernetes reads five (minute hour day-of-month month day-of-week, no "
            f"seconds), e.g. {EXAMPLE}"
        )
    problems, sets = [], []
    for part, field in zip(parts, FIELDS):
        try:
            sets.append(frozenset(_values(part, field)))
        except ValueError as error:
            problems.append(f"{field.describe()}: {error}")
            sets.append(frozenset())
    if problems:
        raise ValueError("; ".join(problems))
    parsed = Schedule(*sets, day_of_month_any=_unrestricted(parts[2]), day_of_week_any=_unrestricted(parts[4]))
    try:
        parsed.longest_gap_seconds()
    except ValueError:
        raise ValueError(f"'{schedule}' never runs (e.g. 30 February); check the day of month against the month") from None
    return parsed
