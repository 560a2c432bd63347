"""A mongomock database that outlives its process: loaded from a file, written through to it after every write.

Test-only stand-in for a durable MongoDB: once a write call returns, its effect is on disk (as with
a journaled server), so a server process can be killed with SIGKILL and a new one started on what
the old one left. Files are replaced atomically (temp file, fsync, rename), so a kill never leaves
half a state. Indexes are not stored: the server recreates them at start-up (`ensure_indexes`).

`pause` is called right before every write with (collection, method, args, kwargs); when it returns
an awaitable the call waits for it, which is how a test parks a request at one exact step of the
money path and kills the process there. Nothing here is imported by production code.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import bson
from bson.codec_options import CodecOptions

WRITES = frozenset({
    "insert_one", "insert_many", "update_one", "update_many", "replace_one", "delete_one", "delete_many",
    "find_one_and_update", "find_one_and_replace", "find_one_and_delete", "bulk_write", "drop"})
CODEC = CodecOptions(tz_aware=True)
Pause = Callable[[str, str, tuple, dict], "Awaitable[Any] | None"]


def read_state(path: Path) -> dict[str, list[dict]]:
    """The stored collections ({name: documents}); empty when nothing was stored yet."""
    if not path.exists():
        return {}
    return bson.decode(path.read_bytes(), codec_options=CODEC)["collections"]


def load_into(sync_db: Any, path: Path) -> None:
    """Insert the stored documents into an empty (sync) mongomock database."""
    for name, documents in read_state(path).items():
        if documents:
            sync_db[name].insert_many(documents)


def save(sync_db: Any, path: Path) -> None:
    """Write every collection of a (sync) mongomock database to `path`, atomically."""
    collections = {name: list(sync_db[name].find()) for name in sorted(sync_db.list_collection_names())}
    temp = path.with_name(path.name + ".tmp")
    with open(temp, "wb") as file:
        file.write(bson.encode({"collections": collections}))
        file.flush()
        os.fsync(file.fileno())
    os.replace(temp, path)


class DurableCollection:
    """A collection whose writes are saved to disk before they return."""

    def __init__(self, inner: Any, database: DurableDatabase) -> None:
        self._inner = inner
        self._database = database

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name not in WRITES:
            return attr

        async def write(*args: Any, **kwargs: Any) -> Any:
            await self._database.checkpoint(self._inner.name, name, args, kwargs)
            result = await attr(*args, **kwargs)
            self._database.save()
            return result
        return write


class DurableDatabase:
    """Wraps a mongomock-motor database: state loaded from `path` now, saved there after each write."""

    def __init__(self, inner: Any, path: Path, pause: Pause | None = None) -> None:
        self._inner = inner
        self._path = path
        self._pause = pause
        load_into(inner.delegate, path)

    def __getitem__(self, name: str) -> DurableCollection:
        return DurableCollection(self._inner[name], self)

    def get_collection(self, name: str, **kwargs: Any) -> DurableCollection:
        """A durable proxy of one collection."""
        return DurableCollection(self._inner.get_collection(name, **kwargs), self)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        attr = getattr(self._inner, name)
        if hasattr(attr, "find_one_and_update") and hasattr(attr, "insert_one"):  # `db.users` style access
            return DurableCollection(attr, self)
        return attr

    def save(self) -> None:
        """Write the whole database to disk now."""
        save(self._inner.delegate, self._path)

    async def checkpoint(self, collection: str, method: str, args: tuple, kwargs: dict) -> None:
        """Give the pause hook its chance to park this write."""
        if self._pause is not None:
            pending = self._pause(collection, method, args, kwargs)
            if pending is not None:
                await pending
