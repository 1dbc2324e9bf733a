"""The shop's logging: plain or JSON lines, each with the ids of the work it is about.

``logging_config`` builds the ``LOGGING`` setting. Every line goes through two
filters: ``outbox.logs.EventContextFilter`` (correlation and causation ids; in a
handler the event's id and type, its group and its order id) and
``RequestContextFilter`` (in a web request its request id, and the order id the
view named). With ``LOG_FORMAT=json`` each line is one JSON object with those
fields where they exist, so one ``grep`` of a correlation id finds the request
and every handler it caused, in every process.

``RoutineTaskFilter`` moves the lines of beat's routine tasks (Celery's "Task ...
received", "Task ... succeeded" and beat's "Sending due task") to DEBUG: at
INFO a shop at rest is quiet.

This module imports nothing of Django: the settings use it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

FORMATS = ("plain", "json")
PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# The loggers whose INFO lines about routine tasks become DEBUG lines.
ROUTINE_LOGGERS = ("celery.app.trace", "celery.worker.strategy", "celery.beat")


@dataclass
class RequestInfo:
    request_id: str
    fields: dict[str, Any] = field(default_factory=dict)


_request: ContextVar[RequestInfo | None] = ContextVar("shop_request", default=None)


@contextmanager
def request_context(request_id: str) -> Iterator[RequestInfo]:
    """Within the block, log lines carry ``request_id`` and whatever ``bind`` adds."""
    info = RequestInfo(request_id)
    token = _request.set(info)
    try:
        yield info
    finally:
        _request.reset(token)


def bind(**fields: Any) -> None:
    """Add fields (e.g. ``order_id=42``) to the log lines of the current request."""
    info = _request.get()
    if info is not None:
        info.fields.update({name: value for name, value in fields.items() if value is not None})


class RequestContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        info = _request.get()
        if info is not None:
            attrs = record.__dict__
            attrs.setdefault("request_id", info.request_id)
            for name, value in info.fields.items():
                attrs.setdefault(name, value)
        return True


class RoutineTaskFilter(logging.Filter):
    """Demotes to DEBUG the INFO lines of Celery and beat that name a routine task.

    On a handler: the line is then written only where its logger is enabled for DEBUG.
    """

    def __init__(self, tasks: Iterable[str] = ()) -> None:
        super().__init__()
        self.tasks = frozenset(tasks)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or record.name not in ROUTINE_LOGGERS:
            return True
        args = record.args
        values = args.values() if isinstance(args, Mapping) else (args or ())
        if not any(isinstance(value, str) and value in self.tasks for value in values):
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


def parse_levels(text: str) -> dict[str, str]:
    """``"celery=WARNING,outbox.handled=WARNING"`` as ``{logger: level}``; ValueError if malformed."""
    levels: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, level = part.partition("=")
        level = level.strip().upper()
        if not sep or not name.strip() or level not in logging.getLevelNamesMapping():
            raise ValueError(f"{part!r} is not LOGGER=LEVEL (e.g. outbox.handled=WARNING)")
        levels[name.strip()] = level
    return levels


def logging_config(
    *,
    fmt: str,
    level: str,
    levels: Mapping[str, str] | None = None,
    routine_tasks: Iterable[str] = (),
) -> dict[str, Any]:
    """The ``LOGGING`` setting: one console handler, plain or JSON, with the context filters."""
    if fmt not in FORMATS:
        raise ValueError(f"LOG_FORMAT must be one of {', '.join(FORMATS)}, not {fmt!r}")
    formatters: dict[str, Any] = {"plain": {"format": PLAIN_FORMAT}}
    if fmt == "json":
        formatters["json"] = {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(levelname)s %(name)s %(message)s %(process)d %(threadName)s",
            "rename_fields": {"levelname": "level", "name": "logger", "threadName": "thread"},
            "timestamp": True,
        }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "event": {"()": "outbox.logs.EventContextFilter"},
            "request": {"()": "shop.logs.RequestContextFilter"},
            "routine": {"()": "shop.logs.RoutineTaskFilter", "tasks": sorted(routine_tasks)},
        },
        "formatters": formatters,
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": fmt,
                "filters": ["routine", "event", "request"],
            }
        },
        "root": {"handlers": ["console"], "level": level.upper()},
        "loggers": {name: {"level": value} for name, value in (levels or {}).items()},
    }
