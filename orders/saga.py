"""The saga of one order as steps, and as a picture: built from the timeline read model only.

Each step (reserve, charge, confirm, ship, notify, and the compensations:
cancel the shipment, release the stock, refund) has a state, when it started
and ended, and so how long it took. ``saga_steps`` derives them from the
timeline entries; ``render_svg`` draws them as a server-rendered SVG: one row
per step, a bar on a common time axis, coloured by state.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.utils import timezone
from django.utils.html import escape

from orders.models import Order, TimelineEntry

DONE, FAILED, WAITING, NOT_NEEDED, SKIPPED = "done", "failed", "waiting", "not needed", "skipped"

COLOURS = {
    DONE: "#2e7d32",
    FAILED: "#c62828",
    WAITING: "#f9a825",
    NOT_NEEDED: "#bdbdbd",
    SKIPPED: "#bdbdbd",
}


@dataclass
class Step:
    """One step of the saga: what it is, how it went, and when."""

    name: str
    kind: str  # "forward" or "compensation"
    state: str
    started_at: datetime | None = None
    ended_at: datetime | None = None
    detail: str = ""
    marks: list[tuple[datetime, str]] = field(default_factory=list)

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return round((self.ended_at - self.started_at).total_seconds(), 3)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "state": self.state,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "duration_s": self.duration_s,
            "detail": self.detail,
        }


def _first(entries: Sequence[TimelineEntry], *types: str) -> TimelineEntry | None:
    return next((entry for entry in entries if entry.event_type in types), None)


def saga_steps(order: Order, entries: Iterable[TimelineEntry]) -> list[Step]:
    """The steps of ``order``'s saga as its timeline tells them, in the order they can happen."""
    entries = list(entries)
    created = _first(entries, "orders.OrderCreated")
    start = created.occurred_at if created else None
    final = order.status in (Order.Status.SHIPPED, Order.Status.CANCELLED)
    cancelled = _first(entries, "orders.OrderCancelled")

    def step(name: str, begun: datetime | None, ok: str, bad: str = "", *, needed=True) -> Step:
        good, failed = _first(entries, ok), (_first(entries, bad) if bad else None)
        end = good or failed
        if end is not None:
            state = DONE if end is good else FAILED
            reason = end.data.get("reason", "") if end is failed else ""
            return Step(name, "forward", state, begun, end.occurred_at, str(reason))
        if not needed or begun is None or final or cancelled:
            return Step(name, "forward", SKIPPED, begun, None)
        return Step(name, "forward", WAITING, begun, None)

    reserve = step(
        "reserve stock", start, "inventory.StockReserved", "inventory.StockReservationFailed"
    )
    charge = step("charge payment", start, "payments.PaymentProcessed", "payments.PaymentFailed")
    both = [s.ended_at for s in (reserve, charge) if s.state == DONE and s.ended_at is not None]
    confirm = step(
        "confirm",
        max(both) if len(both) == 2 else None,
        "orders.OrderConfirmed",
        needed=len(both) == 2,
    )
    shipment = _first(entries, "shipping.ShipmentCreated")
    ship = step(
        "ship",
        shipment.occurred_at if shipment else confirm.ended_at,
        "shipping.OrderShipped",
        "shipping.ShipmentCancelled",
        needed=confirm.state == DONE,
    )
    if ship.state == FAILED:  # cancelled on request: nothing failed, it just did not ship
        ship.state, ship.detail = SKIPPED, "shipment cancelled"
    notified = [entry for entry in entries if entry.event_type == "notifications.CustomerNotified"]
    notify = Step(
        "notify customer",
        "forward",
        DONE if notified else (SKIPPED if final else WAITING),
        start,
        notified[-1].occurred_at if notified else None,
        ", ".join(str(entry.data.get("kind", "")) for entry in notified),
        [(entry.occurred_at, str(entry.data.get("kind", ""))) for entry in notified],
    )
    steps = [reserve, charge, confirm, ship, notify]

    requested = _first(entries, "orders.OrderCancellationRequested")
    if requested is not None:
        answer = _first(
            entries,
            "shipping.ShipmentCancelled",
            "shipping.ShipmentCancellationRefused",
            "orders.OrderCancellationRefused",
        )
        if answer is None:
            state, detail = (WAITING if order.status == Order.Status.CANCELLING else SKIPPED), ""
        elif answer.event_type == "shipping.ShipmentCancelled":
            state, detail = DONE, "shipment cancelled"
        else:
            state, detail = FAILED, str(answer.data.get("reason", ""))
        steps.append(
            Step(
                "cancel shipment",
                "compensation",
                state,
                requested.occurred_at,
                answer.occurred_at if answer else None,
                detail,
            )
        )
    steps.append(
        _compensation(
            "release stock", cancelled, reserve, _first(entries, "inventory.StockReleased")
        )
    )
    steps.append(
        _compensation(
            "refund payment", cancelled, charge, _first(entries, "payments.PaymentRefunded")
        )
    )
    return steps


def _compensation(
    name: str, cancelled: TimelineEntry | None, undoes: Step, done: TimelineEntry | None
) -> Step:
    if done is not None:
        begun = max(
            (t for t in (cancelled and cancelled.occurred_at, undoes.ended_at) if t), default=None
        )
        return Step(name, "compensation", DONE, begun, done.occurred_at)
    if cancelled is None:
        return Step(name, "compensation", NOT_NEEDED)
    if undoes.state == DONE:
        return Step(name, "compensation", WAITING, cancelled.occurred_at)
    if undoes.state == WAITING:
        # The step it would undo may still land late: then it is undone.
        return Step(name, "compensation", WAITING, cancelled.occurred_at, detail="if it lands")
    return Step(name, "compensation", NOT_NEEDED, detail="nothing to give back")


# --- the picture ----------------------------------------------------------------------------

WIDTH, LABEL_W, ROW_H, TOP, RIGHT_PAD = 860, 150, 30, 44, 290


def _seconds(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def render_svg(order: Mapping[str, Any] | Order, steps: Sequence[Step], *, now=None) -> str:
    """The steps as an SVG document (text escaped; no scripts, no external resources)."""
    order_id = order["id"] if isinstance(order, Mapping) else order.pk
    status = order["status"] if isinstance(order, Mapping) else order.status
    now = now or timezone.now()
    times = [t for s in steps for t in (s.started_at, s.ended_at) if t is not None]
    t0 = min(times) if times else now
    t1 = max([*times, *([now] if any(s.state == WAITING for s in steps) else [])], default=now)
    span = max((t1 - t0).total_seconds(), 0.001)
    plot_w = WIDTH - LABEL_W - RIGHT_PAD
    height = TOP + ROW_H * len(steps) + 30

    def x(at: datetime) -> float:
        return LABEL_W + (at - t0).total_seconds() / span * plot_w

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12" role="img">',
        f"<title>Saga of order #{escape(order_id)} ({escape(status)})</title>",
        f'<text x="8" y="18" font-size="14" font-weight="bold">Order #{escape(order_id)}: '
        f"{escape(status)}</text>",
        f'<text x="{LABEL_W}" y="34" fill="#555">0</text>',
        f'<text x="{LABEL_W + plot_w}" y="34" fill="#555" text-anchor="end">'
        f"{escape(_seconds(span))}</text>",
    ]
    for row, item in enumerate(steps):
        y = TOP + row * ROW_H
        colour = COLOURS[item.state]
        style = ' font-style="italic"' if item.kind == "compensation" else ""
        parts.append(f'<text x="8" y="{y + 18}"{style}>{escape(item.name)}</text>')
        if item.started_at is not None:
            end = item.ended_at or (now if item.state == WAITING else item.started_at)
            left, right = x(item.started_at), x(end)
            # A step of instants (notifications) is a thin line with a dot for each.
            top, tall = (y + 13, 4) if item.marks else (y + 6, ROW_H - 12)
            parts.append(
                f'<rect x="{left:.1f}" y="{top}" width="{max(right - left, 3):.1f}" '
                f'height="{tall}" rx="2" fill="{colour}">'
                f"<title>{escape(item.name)}: {escape(item.state)}; started "
                f"{escape(item.started_at.isoformat())}"
                + (f", ended {escape(item.ended_at.isoformat())}" if item.ended_at else "")
                + "</title></rect>"
            )
        for at, label in item.marks:
            parts.append(
                f'<circle cx="{x(at):.1f}" cy="{y + ROW_H / 2}" r="4" fill="#1565c0">'
                f"<title>{escape(label)} at {escape(at.isoformat())}</title></circle>"
            )
        words = [item.state, _seconds(item.duration_s), item.detail]
        caption = " · ".join(w for w in words if w)[:40]
        parts.append(
            f'<text x="{WIDTH - RIGHT_PAD + 8}" y="{y + 18}" fill="{colour}">'
            f"{escape(caption)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def render_error_svg(message: str) -> str:
    """A small SVG that says ``message`` (for an error answered as a picture)."""
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="40" '
        f'font-family="sans-serif" font-size="12" role="img"><title>{escape(message)}</title>'
        f'<text x="8" y="24" fill="#c62828">{escape(message)}</text></svg>'
    )
