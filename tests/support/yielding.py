"""Yielding proxy for a Motor / mongomock-motor database, for concurrency tests.

mongomock never yields inside a call, so with it every ``await coll.op()``
runs start-to-finish without letting another task in, and naive
read-then-write code looks race-free.  Wrapping the database in
`YieldingDatabase` makes every collection call ``await asyncio.sleep(0)``
before and after it (and around each item of an ``async for``), so concurrent
tasks interleave at every database round trip the way they do against a
real server.

The proxy is transparent: ``db["users"]``, ``db.users``,
``db.get_collection("users")``, cursor chaining
(``find().sort().limit().to_list()``), ``aggregate(...).to_list()`` and
``async for`` all work.  Cursor methods are lazy: the real call happens on the
first ``to_list``/``__anext__``, after the first yield, because
mongomock's ``aggregate`` would otherwise run its pipeline at call time.

An optional ``hook(collection_name, method_name)`` runs right before each
real call; raising from it simulates a crash or a network error at exactly
that point, and returning an awaitable (e.g. ``event.wait()``) parks the
calling task there until it completes, to force one precise interleaving.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

Hook = Callable[[str, str], "Awaitable[Any] | None"]

CURSOR_METHODS = frozenset({
    "find", "aggregate", "list_indexes", "find_raw_batches",
    "aggregate_raw_batches", "list_search_indexes", "watch"})
CHAINING_METHODS = frozenset({
    "add_option", "allow_disk_use", "batch_size", "collation", "comment", "hint",
    "limit", "max", "max_await_time_ms", "max_scan", "max_time_ms", "min",
    "remove_option", "skip", "sort", "where"})


def _is_collection(value: Any) -> bool:
    return hasattr(value, "find_one_and_update") and hasattr(value, "insert_one")


class _Proxy:
    """Shared attribute wrapping for databases and collections."""

    def __init__(self, target: Any, label: str, hook: Hook | None) -> None:
        self._target = target
        self._label = label
        self._hook = hook

    @property
    def unwrapped(self) -> Any:
        """Return the wrapped Motor object."""
        return self._target

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # also stops recursion before __init__ ran
            raise AttributeError(name)
        attr = getattr(self._target, name)
        if _is_collection(attr):
            return YieldingCollection(attr, _name_of(attr, name), self._hook)
        if name in CURSOR_METHODS:
            return lambda *args, **kwargs: YieldingCursor(
                lambda: attr(*args, **kwargs), self._label, name, self._hook)
        if inspect.iscoroutinefunction(attr):
            return self._deferred(attr, name)
        if callable(attr):
            return self._eager(attr, name)
        return attr

    def _deferred(self, method: Callable[..., Any], name: str) -> Callable[..., Any]:
        async def call(*args: Any, **kwargs: Any) -> Any:
            await asyncio.sleep(0)
            await _run_hook(self._hook, self._label, name)
            result = await method(*args, **kwargs)
            await asyncio.sleep(0)
            return _wrap_result(result, self._hook)
        return call

    def _eager(self, method: Callable[..., Any], name: str) -> Callable[..., Any]:
        # Plain callables (real Motor returns futures; with_options etc. are
        # sync): call now, and yield around the await only if there is one.
        def call(*args: Any, **kwargs: Any) -> Any:
            result = method(*args, **kwargs)
            if not inspect.isawaitable(result):
                return _wrap_result(result, self._hook)

            async def awaited() -> Any:
                await asyncio.sleep(0)
                await _run_hook(self._hook, self._label, name)
                value = await result
                await asyncio.sleep(0)
                return _wrap_result(value, self._hook)
            return awaited()
        return call

class YieldingDatabase(_Proxy):
    """Database proxy handing out yielding collections."""

    def __init__(self, db: Any, hook: Hook | None = None) -> None:
        super().__init__(db, getattr(db, "name", "db"), hook)

    def __getitem__(self, name: str) -> YieldingCollection:
        return YieldingCollection(self._target[name], name, self._hook)

    def get_collection(self, name: str, **kwargs: Any) -> YieldingCollection:
        """Return a yielding proxy of one collection."""
        return YieldingCollection(self._target.get_collection(name, **kwargs), name,
                                  self._hook)

    def with_hook(self, hook: Hook | None) -> YieldingDatabase:
        """Return a proxy over the same database with a different hook."""
        return YieldingDatabase(self._target, hook)


class YieldingCollection(_Proxy):
    """Collection proxy whose calls yield to the event loop before and after."""


class YieldingCursor:
    """Lazy cursor proxy: records chaining calls, yields around each fetch."""

    def __init__(self, factory: Callable[[], Any], label: str, method: str,
                 hook: Hook | None) -> None:
        self._factory = factory
        self._label = label
        self._method = method
        self._hook = hook
        self._chain: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self._cursor: Any = None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if name in CHAINING_METHODS and self._cursor is None:
            def chain(*args: Any, **kwargs: Any) -> YieldingCursor:
                self._chain.append((name, args, kwargs))
                return self
            return chain
        return getattr(self._build(), name)

    async def _open(self) -> Any:
        if self._cursor is None:
            await _run_hook(self._hook, self._label, self._method)
        return self._build()

    def _build(self) -> Any:
        if self._cursor is None:
            cursor = self._factory()
            for name, args, kwargs in self._chain:
                cursor = getattr(cursor, name)(*args, **kwargs)
            self._cursor = cursor
        return self._cursor

    async def to_list(self, *args: Any, **kwargs: Any) -> list[Any]:
        """Fetch the results, yielding before and after."""
        await asyncio.sleep(0)
        result = await (await self._open()).to_list(*args, **kwargs)
        await asyncio.sleep(0)
        return result

    def __aiter__(self) -> YieldingCursor:
        return self

    async def __anext__(self) -> Any:
        await asyncio.sleep(0)
        item = await (await self._open()).__anext__()
        await asyncio.sleep(0)
        return item

    next = __anext__


async def _run_hook(hook: Hook | None, collection: str, method: str) -> None:
    if hook is not None:
        pending = hook(collection, method)
        if pending is not None:
            await pending


def _name_of(collection: Any, fallback: str) -> str:
    name = getattr(collection, "name", fallback)
    return name if isinstance(name, str) else fallback


def _wrap_result(value: Any, hook: Hook | None) -> Any:
    if _is_collection(value) and not isinstance(value, YieldingCollection):
        return YieldingCollection(value, _name_of(value, "?"), hook)
    return value
