"""The registered event schemas, their committed snapshot, and what counts as breaking.

The snapshot (``OUTBOX_SCHEMA_SNAPSHOT``, by default ``event_schemas.json`` in
the project's ``BASE_DIR``) records the JSON Schema of every event type and
version but those declared in the modules ``OUTBOX_SCHEMA_SNAPSHOT_EXCLUDE``
names (test and benchmark events). A test compares the code with it: a change to a
published version's schema that could break a consumer or an event already in
the log fails unless the version is bumped (with an upcaster from the old one).
Compatible changes (a new optional field) only need the snapshot refreshed
with ``manage.py outbox_schemas --write``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from outbox.conf import conf
from outbox.registry import registry

IGNORED_KEYS = {"title", "description", "examples"}


def snapshot_path() -> Path:
    return conf.schema_snapshot_path()


def current() -> dict[str, dict[str, Any]]:
    """Schema of each registered event, keyed ``name@vN``, but those of excluded modules."""
    excluded = tuple(conf.SCHEMA_SNAPSHOT_EXCLUDE)
    return {
        f"{name}@v{version}": cls.model_json_schema()
        for (name, version), cls in sorted(registry.events.items())
        if not (excluded and cls.__module__.startswith(excluded))
    }


def load_snapshot() -> dict[str, dict[str, Any]]:
    path = snapshot_path()
    return json.loads(path.read_text()) if path.exists() else {}


def write_snapshot() -> Path:
    path = snapshot_path()
    path.write_text(json.dumps(current(), indent=2, sort_keys=True) + "\n")
    return path


def _strip(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: _strip(v) for k, v in schema.items() if k not in IGNORED_KEYS}
    if isinstance(schema, list):
        return [_strip(v) for v in schema]
    return schema


def _resolve(schema: dict, root: dict) -> dict:
    ref = schema.get("$ref")
    if ref and ref.startswith("#/$defs/"):
        return root.get("$defs", {}).get(ref.removeprefix("#/$defs/"), {})
    return schema


def breaking_changes(
    old: dict, new: dict, *, path: str = "", old_root=None, new_root=None
) -> list[str]:
    """Why ``new`` cannot read what ``old`` wrote, or what ``old``'s readers expect (empty if compatible).

    Breaking: a property removed or its type changed, a property that becomes
    required, a required property that becomes optional, extra properties
    newly forbidden. Adding an optional property is compatible.
    """
    old_root, new_root = old_root or old, new_root or new
    old, new = _strip(_resolve(old, old_root)), _strip(_resolve(new, new_root))
    problems: list[str] = []
    old_props, new_props = old.get("properties", {}), new.get("properties", {})
    for name, old_prop in old_props.items():
        where = f"{path}{name}"
        if name not in new_props:
            problems.append(f"{where}: removed")
            continue
        old_prop, new_prop = _resolve(old_prop, old_root), _resolve(new_props[name], new_root)
        if old_prop.get("type") == "object" or "properties" in old_prop:
            problems += breaking_changes(
                old_prop, new_prop, path=f"{where}.", old_root=old_root, new_root=new_root
            )
        elif old_prop.get("type") == "array" and isinstance(old_prop.get("items"), dict):
            problems += breaking_changes(
                {"properties": {"[]": old_prop["items"]}},
                {"properties": {"[]": new_prop.get("items", {})}},
                path=f"{where}",
                old_root=old_root,
                new_root=new_root,
            )
        else:
            old_cmp = {k: v for k, v in _strip(old_prop).items() if k != "default"}
            new_cmp = {k: v for k, v in _strip(new_prop).items() if k != "default"}
            if old_cmp != new_cmp:
                problems.append(f"{where}: type changed from {old_cmp} to {new_cmp}")
    old_required, new_required = set(old.get("required", [])), set(new.get("required", []))
    for name in sorted(new_required - old_required):
        problems.append(f"{path}{name}: became required")
    for name in sorted((old_required - new_required) & set(new_props)):
        problems.append(f"{path}{name}: no longer required")
    return problems


def compare(snapshot: dict[str, dict], code: dict[str, dict]) -> tuple[list[str], list[str]]:
    """(breaking problems, compatible differences) between the snapshot and the code."""
    breaking: list[str] = []
    compatible: list[str] = []
    for key, old in snapshot.items():
        name, _, version = key.rpartition("@v")
        if key not in code:
            if (name, int(version)) not in registry.upcasters:
                breaking.append(f"{key}: gone, and no upcaster takes it to the next version")
            continue
        problems = breaking_changes(old, code[key])
        breaking += [f"{key}: {p}" for p in problems]
        if not problems and _strip(old) != _strip(code[key]):
            compatible.append(f"{key}: changed compatibly")
    compatible += [f"{key}: new" for key in code if key not in snapshot]
    return breaking, compatible
