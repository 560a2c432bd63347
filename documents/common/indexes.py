"""Index declarations: each module declares `INDEXES` {collection: [IndexModel]}, each package merges its own."""

from __future__ import annotations

from typing import Any


def merge_indexes(*declarations: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """One {collection: [IndexModel]} from several modules' declarations."""
    merged: dict[str, list[Any]] = {}
    for declared in declarations:
        for collection, models in declared.items():
            merged.setdefault(collection, []).extend(models)
    return merged
