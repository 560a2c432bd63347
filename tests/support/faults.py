"""A database proxy whose collections can be told to fail a given call, for error-path tests."""

from __future__ import annotations

from typing import Any


class _Collection:
    def __init__(self, inner: Any, faults: dict[tuple[str, str], BaseException]) -> None:
        self._inner = inner
        self._faults = faults
        self._name = inner.name

    def __getattr__(self, attr: str) -> Any:
        fault = self._faults.get((self._name, attr))
        if fault is None:
            return getattr(self._inner, attr)

        async def failing(*args: Any, **kwargs: Any) -> Any:
            raise fault
        return failing


class FaultyDatabase:
    """Wraps a Motor-like database; `fail("users", "insert_one", exc)` makes that call raise."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.faults: dict[tuple[str, str], BaseException] = {}

    def fail(self, collection: str, method: str, exc: BaseException) -> None:
        self.faults[(collection, method)] = exc

    def heal(self) -> None:
        self.faults.clear()

    def __getitem__(self, name: str) -> _Collection:
        return _Collection(self._inner[name], self.faults)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._inner, name)


class FaultyClient:
    """A Motor-like client whose databases are FaultyDatabase proxies (one per name)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self._dbs: dict[str, FaultyDatabase] = {}

    def __getitem__(self, name: str) -> FaultyDatabase:
        if name not in self._dbs:
            self._dbs[name] = FaultyDatabase(self._inner[name])
        return self._dbs[name]

    def close(self) -> None:
        self._inner.close()
