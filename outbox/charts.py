"""Small SVG charts for the operator's pages, drawn on the server (no script, no build).

Every text is escaped. Each chart is an ``<svg role="img">`` with a ``<title>``
and a legend naming every series, so a reader (or a test) can tell what it shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from html import escape

from outbox.inspect import Lifecycle

PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#e15759",
    "#76b7b2",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
)
STATE_COLOURS = {
    "applied": "#59a14f",
    "pending": "#9c9c9c",
    "failing": "#f28e2b",
    "dead": "#e15759",
    "discarded": "#7f7f7f",
}
WIDTH = 760
PLOT_LEFT, PLOT_RIGHT, PLOT_TOP = 48, 560, 28


def _svg(width: int, height: int, title: str, body: list[str], css_class: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="{css_class}" role="img" '
        f'aria-label="{escape(title)}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">'
        f"<title>{escape(title)}</title>"
        f'<text x="{PLOT_LEFT}" y="16" font-size="13" font-weight="bold">{escape(title)}</text>'
        + "".join(body)
        + "</svg>"
    )


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    step = 10 ** (len(str(int(value))) - 1)
    for factor in (1, 2, 5, 10):
        if value <= factor * step:
            return float(factor * step)
    return float(10 * step)


def _axes(top: float, start: datetime, minutes: int, unit: str, plot_bottom: int) -> list[str]:
    parts = [
        f'<line x1="{PLOT_LEFT}" y1="{PLOT_TOP}" x2="{PLOT_LEFT}" y2="{plot_bottom}" stroke="#888"/>',
        f'<line x1="{PLOT_LEFT}" y1="{plot_bottom}" x2="{PLOT_RIGHT}" y2="{plot_bottom}" stroke="#888"/>',
    ]
    for fraction in (0.0, 0.5, 1.0):
        y = plot_bottom - fraction * (plot_bottom - PLOT_TOP)
        label = f"{top * fraction:g}"
        parts.append(
            f'<text x="{PLOT_LEFT - 4}" y="{y + 4:.1f}" text-anchor="end">{escape(label)}</text>'
        )
        if fraction:
            parts.append(
                f'<line x1="{PLOT_LEFT}" y1="{y:.1f}" x2="{PLOT_RIGHT}" y2="{y:.1f}" '
                'stroke="#e4e4e4"/>'
            )
    step = (PLOT_RIGHT - PLOT_LEFT) / max(minutes, 1)
    for index in range(0, minutes + 1, 10):
        x = PLOT_LEFT + index * step
        when = (start + timedelta(minutes=index)).strftime("%H:%M")
        parts.append(f'<text x="{x:.1f}" y="{plot_bottom + 14}" text-anchor="middle">{when}</text>')
    parts.append(f'<text x="{PLOT_LEFT - 40}" y="{PLOT_TOP - 8}" fill="#555">{escape(unit)}</text>')
    return parts


def _legend(names: Sequence[str], colours: Sequence[str], *, x: int = PLOT_RIGHT + 16) -> list[str]:
    parts = []
    for n, (name, colour) in enumerate(zip(names, colours, strict=True)):
        y = PLOT_TOP + 4 + n * 16
        parts.append(
            f'<rect x="{x}" y="{y - 9}" width="10" height="10" fill="{colour}"/>'
            f'<text class="legend" x="{x + 14}" y="{y}">{escape(name)}</text>'
        )
    return parts


def _note(text: str, x: float, y: float) -> str:
    """A grey line of text in the middle of an empty chart."""
    return f'<text x="{x}" y="{y}" text-anchor="middle" fill="#777">{escape(text)}</text>'


def _height(series: int) -> tuple[int, int]:
    plot_bottom = max(220, PLOT_TOP + 8 + series * 16)
    return plot_bottom + 24, plot_bottom


def stacked_bars(
    series: dict[str, list[int]], *, start: datetime, title: str, unit: str, empty: str
) -> str:
    """One bar per minute, stacked by series (e.g. events committed per minute, by type)."""
    minutes = len(next(iter(series.values()))) if series else 60
    height, bottom = _height(len(series))
    totals = [sum(values[i] for values in series.values()) for i in range(minutes)]
    top = _nice_max(max(totals, default=0))
    body = _axes(top, start, minutes, unit, bottom)
    step = (PLOT_RIGHT - PLOT_LEFT) / minutes
    colours = [PALETTE[n % len(PALETTE)] for n in range(len(series))]
    for index in range(minutes):
        base = float(bottom)
        for (name, values), colour in zip(series.items(), colours, strict=True):
            if not values[index]:
                continue
            h = values[index] / top * (bottom - PLOT_TOP)
            base -= h
            when = (start + timedelta(minutes=index)).strftime("%H:%M")
            body.append(
                f'<rect x="{PLOT_LEFT + index * step + 0.5:.1f}" y="{base:.1f}" '
                f'width="{max(step - 1, 1):.1f}" height="{h:.1f}" fill="{colour}">'
                f"<title>{escape(name)}: {values[index]} at {when}</title></rect>"
            )
    if not series:
        body.append(_note(empty, (PLOT_LEFT + PLOT_RIGHT) / 2, bottom / 2 + 10))
    body += _legend(list(series), colours)
    return _svg(WIDTH, height, title, body, "chart stacked-bars")


def lines(
    series: dict[str, list[int]], *, start: datetime, title: str, unit: str, empty: str
) -> str:
    """One line per series over the minutes (e.g. each group's lag)."""
    minutes = len(next(iter(series.values()))) if series else 60
    height, bottom = _height(len(series))
    top = _nice_max(max((max(v, default=0) for v in series.values()), default=0))
    body = _axes(top, start, minutes, unit, bottom)
    step = (PLOT_RIGHT - PLOT_LEFT) / max(minutes - 1, 1)
    colours = [PALETTE[n % len(PALETTE)] for n in range(len(series))]
    for (name, values), colour in zip(series.items(), colours, strict=True):
        points = " ".join(
            f"{PLOT_LEFT + i * step:.1f},{bottom - v / top * (bottom - PLOT_TOP):.1f}"
            for i, v in enumerate(values)
        )
        body.append(
            f'<polyline class="series" fill="none" stroke="{colour}" stroke-width="2" '
            f'points="{points}"><title>{escape(name)}: now {values[-1] if values else 0}'
            f"</title></polyline>"
        )
    if not series:
        body.append(_note(empty, (PLOT_LEFT + PLOT_RIGHT) / 2, bottom / 2 + 10))
    body += _legend(list(series), colours)
    return _svg(WIDTH, height, title, body, "chart lines")


def horizontal_bars(
    rows: dict[str, dict[str, int]], *, title: str, empty: str, groups: Sequence[str] = ()
) -> str:
    """One bar per row, split by group: e.g. open dead letters by reason, per consumer group."""
    names = sorted({g for split in rows.values() for g in split} | set(groups))
    colours = {name: PALETTE[n % len(PALETTE)] for n, name in enumerate(names)}
    bar_left, bar_right = 160, 540
    height = max(80, 40 + 24 * len(rows), 40 + 16 * len(names))
    top = _nice_max(max((sum(split.values()) for split in rows.values()), default=0))
    body: list[str] = []
    for n, (kind, split) in enumerate(rows.items()):
        y = 32 + n * 24
        body.append(
            f'<text x="{bar_left - 8}" y="{y + 13}" text-anchor="end">{escape(kind)}</text>'
        )
        x = float(bar_left)
        for group, count in sorted(split.items()):
            w = count / top * (bar_right - bar_left)
            body.append(
                f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="18" fill="{colours[group]}">'
                f"<title>{escape(kind)}: {count} in {escape(group)}</title></rect>"
            )
            x += w
        body.append(f'<text x="{x + 6:.1f}" y="{y + 13}">{sum(split.values())}</text>')
    if not rows:
        body.append(_note(empty, (bar_left + bar_right) / 2, 52))
    body += _legend(names, [colours[n] for n in names], x=bar_right + 40)
    return _svg(WIDTH, height, title, body, "chart horizontal-bars")


def lifecycle_svg(life: Lifecycle) -> str:
    """The event on a time axis: committed, relayed, then each group's outcome, one row each."""
    event = life.event
    origin = event.occurred_at
    times = [s.after_s for s in life.groups if s.after_s is not None]
    if life.published_after_s is not None:
        times.append(life.published_after_s)
    span = max([*times, 0.001]) * 1.1
    left, right, row_h = 170, 700, 24
    rows = 2 + len(life.groups)  # committed, relayed, then one per group
    height = 56 + row_h * rows
    axis_y = 36 + row_h * rows

    def x_of(seconds: float) -> float:
        return left + seconds / span * (right - left)

    body = [
        f'<line x1="{left}" y1="{axis_y}" x2="{right}" y2="{axis_y}" stroke="#888"/>',
        f'<text x="{left}" y="{axis_y + 14}" text-anchor="middle">0</text>',
        f'<text x="{right}" y="{axis_y + 14}" text-anchor="middle">{span * 1000:.0f} ms</text>',
    ]
    marks: list[tuple[str, float | None, str, str]] = [
        ("committed", 0.0, "#4e79a7", origin.isoformat()),
        (
            "relayed",
            life.published_after_s,
            "#4e79a7" if life.published_after_s is not None else "#9c9c9c",
            f"stream {life.entry.stream} entry {life.entry.entry_id or '?'}"
            if life.published_after_s is not None
            else "not relayed yet",
        ),
    ]
    for state in life.groups:
        label = state.state + (f" after {state.after_s * 1000:.0f} ms" if state.after_s else "")
        marks.append((state.group, state.after_s, STATE_COLOURS.get(state.state, "#777"), label))
    for n, (name, seconds, colour, note) in enumerate(marks):
        y = 36 + n * row_h
        body.append(
            f'<text class="row" x="{left - 8}" y="{y + 4}" text-anchor="end">{escape(name)}</text>'
        )
        body.append(f'<line x1="{left}" y1="{y}" x2="{right}" y2="{y}" stroke="#eee"/>')
        if seconds is None:
            body.append(f'<text x="{left + 4}" y="{y + 4}" fill="{colour}">{escape(note)}</text>')
            continue
        x = x_of(seconds)
        body.append(
            f'<circle cx="{x:.1f}" cy="{y}" r="5" fill="{colour}"><title>{escape(name)}: '
            f"{escape(note)}</title></circle>"
        )
        anchor = "end" if x > (left + right) / 2 else "start"
        dx = -8 if anchor == "end" else 8
        body.append(
            f'<text x="{x + dx:.1f}" y="{y + 4}" text-anchor="{anchor}" fill="#333">'
            f"{escape(note)}</text>"
        )
    title = f"{event.event_type} #{event.pk}: from commit to every group"
    return _svg(WIDTH, height, title, body, "chart lifecycle")
