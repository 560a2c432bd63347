"""A database proxy that records every collection call (filters, updates, documents) for injection tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Call:
    """One collection method call as the app made it."""

    collection: str
    method: str
    args: tuple
    kwargs: dict

    def values(self) -> Iterator[Any]:
        """Every key and value nested anywhere in the call's arguments."""
        yield from _walk((self.args, self.kwargs))


def _walk(value: Any) -> Iterator[Any]:
    yield value
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _walk(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _walk(item)


class _Collection:
    def __init__(self, inner: Any, log: list[Call]) -> None:
        self._inner = inner
        self._log = log

    def __getattr__(self, attr: str) -> Any:
        target = getattr(self._inner, attr)
        if not callable(target):
            return target

        def recorded(*args: Any, **kwargs: Any) -> Any:
            self._log.append(Call(self._inner.name, attr, args, kwargs))
            return target(*args, **kwargs)
        return recorded


class RecordingDatabase:
    """Wraps a Motor-like database; `calls` lists what the app asked of its collections, in order."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.calls: list[Call] = []

    def __getitem__(self, name: str) -> _Collection:
        return _Collection(self._inner[name], self.calls)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._inner, name)


class RecordingClient:
    """A Motor-like client whose databases are RecordingDatabase proxies (one per name)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self._dbs: dict[str, RecordingDatabase] = {}

    def __getitem__(self, name: str) -> RecordingDatabase:
        if name not in self._dbs:
            self._dbs[name] = RecordingDatabase(self._inner[name])
        return self._dbs[name]

    def close(self) -> None:
        self._inner.close()
