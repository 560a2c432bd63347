"""Record the store calls one request makes in the real app, and replay them for another user and request.

The bare baseline (`bench.bare`) answers each path by replaying what our handler did to the store
(same collections, methods, filters, updates and documents), with the recorded user, the request's
variable strings (idempotency key, invoice and notification ids...) and freshly generated ids
swapped for this request's, so it pays the same store costs (mongomock scans whole collections,
so the cost depends on the call, not on the code that issued it) without any of our code.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, field
from typing import Any

from bson import ObjectId
from pymongo.errors import PyMongoError

CURSOR_METHODS = frozenset({"find", "aggregate"})
_fresh = itertools.count()


@dataclass
class Call:
    """One store call: collection, method, arguments; cursor calls also their chain and list length."""

    collection: str
    method: str
    args: tuple
    kwargs: dict
    chain: list[tuple[str, tuple, dict]] | None = None
    length: int | None = None


@dataclass
class Template:
    """What one request of an endpoint did: store calls before the answer, in the background, and the answer."""

    endpoint: str
    path: str
    user_id: ObjectId
    strings: dict[str, str]
    calls: list[Call] = field(default_factory=list)
    background: list[Call] = field(default_factory=list)
    status: int = 200
    body: bytes = b""


class RecordingDatabase:
    """A database proxy appending every collection call to `calls` before making it."""

    def __init__(self, db: Any, calls: list[Call]) -> None:
        self._db = db
        self.calls = calls

    def __getitem__(self, name: str) -> _RecordingCollection:
        return _RecordingCollection(self._db[name], name, self.calls)

    def get_collection(self, name: str, **kwargs: Any) -> _RecordingCollection:
        """A recording proxy of one collection."""
        return _RecordingCollection(self._db.get_collection(name, **kwargs), name, self.calls)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._db, name)
        if hasattr(attr, "find_one_and_update"):
            return _RecordingCollection(attr, name, self.calls)
        return attr


class _RecordingCollection:
    def __init__(self, collection: Any, name: str, calls: list[Call]) -> None:
        self._collection, self._name, self._calls = collection, name, calls

    def __getattr__(self, method: str) -> Any:
        target = getattr(self._collection, method)
        if not callable(target):
            return target
        if method in CURSOR_METHODS:
            return lambda *args, **kwargs: _RecordingCursor(self, method, args, kwargs)

        async def call(*args: Any, **kwargs: Any) -> Any:
            self._calls.append(Call(self._name, method, copy.deepcopy(args), copy.deepcopy(kwargs)))
            return await target(*args, **kwargs)
        return call


class _RecordingCursor:
    def __init__(self, owner: _RecordingCollection, method: str, args: tuple, kwargs: dict) -> None:
        self._call = Call(owner._name, method, copy.deepcopy(args), copy.deepcopy(kwargs), chain=[])
        self._cursor = getattr(owner._collection, method)(*args, **kwargs)
        self._owner = owner

    def __getattr__(self, name: str) -> Any:
        def chained(*args: Any, **kwargs: Any) -> _RecordingCursor:
            self._call.chain.append((name, copy.deepcopy(args), copy.deepcopy(kwargs)))
            self._cursor = getattr(self._cursor, name)(*args, **kwargs)
            return self
        return chained

    async def to_list(self, length: int | None = None) -> list:
        """Record the cursor call, then fetch like Motor."""
        self._call.length = length
        self._owner._calls.append(self._call)
        return await self._cursor.to_list(length)

    def __aiter__(self) -> _RecordingCursor:
        self._owner._calls.append(self._call)
        return self

    async def __anext__(self) -> Any:
        return await self._cursor.__anext__()


class Substitution:
    """Maps a template's recorded values to one request's: its user, its strings, fresh ids for generated ones."""

    def __init__(self, template: Template, user_id: ObjectId, strings: dict[str, str]) -> None:
        self.ids: dict[ObjectId, ObjectId] = {template.user_id: user_id}
        self.swaps = [(old, strings[k]) for k, old in template.strings.items() if k in strings and old]
        self.swaps.append((str(template.user_id), str(user_id)))
        self.suffix = f"~{next(_fresh)}"

    def __call__(self, value: Any) -> Any:
        if isinstance(value, ObjectId):
            return self.ids.setdefault(value, ObjectId())
        if isinstance(value, str):
            for old, new in self.swaps:
                if old in value and (len(old) >= 6 or value == old):
                    value = value.replace(old, new)
            return value
        if isinstance(value, dict):
            return {self(k): self(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self(v) for v in value)
        return value

    def fresh_id(self, doc: Any) -> Any:
        """An inserted document with a new _id (string ids get a suffix), so replays never collide on _id."""
        if isinstance(doc, dict) and "_id" in doc:
            old = doc["_id"]
            doc = {**doc, "_id": old + self.suffix if isinstance(old, str) else ObjectId()}
        return doc


async def replay(db: Any, calls: list[Call], sub: Substitution) -> int:
    """Make the calls against db for one request; store errors (a duplicate key...) count as done. Return calls made."""
    for call in calls:
        args, kwargs = sub(call.args), sub(call.kwargs)
        if call.method == "insert_one":
            args = (sub.fresh_id(args[0]), *args[1:])
        try:
            collection = db[call.collection]
            if call.chain is None:
                await getattr(collection, call.method)(*args, **kwargs)
                continue
            cursor = getattr(collection, call.method)(*args, **kwargs)
            for name, chain_args, chain_kwargs in call.chain:
                cursor = getattr(cursor, name)(*sub(chain_args), **sub(chain_kwargs))
            await cursor.to_list(call.length)
        except PyMongoError:
            pass
    return len(calls)
