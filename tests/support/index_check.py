"""MongoDB's `notablescan` for the test store: every filter and sort the application sends must be served by an index
it declares, and writes a real MongoDB refuses are refused here too.

mongomock answers any query by scanning every document, so a missing index never shows in the tests; on a real
MongoDB it is a collection scan per request. `install()` wraps mongomock's Collection so that each query, update,
delete, find-and-modify, count, distinct and aggregate issued by application code (not by test code) is planned
against the IndexModels in `documents.all_indexes()` with MongoDB's rules:

- an index is a candidate when the filter bounds its first key (equality, `$in`, a range, `$exists`, `$elemMatch`,
  `$ne`/`$nin` (MongoDB scans the two outer ranges), a regex); `_id` always has one;
- a sparse index only when the filter cannot match a document missing that key; a partial index only when the filter
  implies its `partialFilterExpression`;
- a sort must come from the same index: after the keys fixed by equality, the next keys in the sort's order, all in
  the index's direction or all reversed (equality, then sort, then range); a sort alone may walk an index;
- `$or` needs an index for every branch (MongoDB's index union).

A query no index serves raises OperationFailure (code 291, as MongoDB's `notablescan` does) and is recorded, so the
test that issued it fails even where the application swallows the error (see tests/conftest.py). ALLOWED_SCANS lists
the deliberate scans. The write rules are in `check_write`.
"""

from __future__ import annotations

import operator
import os
import sys
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import bson
from bson.codec_options import CodecOptions
from mongomock.collection import Collection
from pymongo.errors import OperationFailure, WriteError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SUPPORT = os.path.join(ROOT, "tests", "support") + os.sep
TESTS = os.path.join(ROOT, "tests") + os.sep
VENV = os.path.join(ROOT, ".venv") + os.sep

# Deliberate whole-collection reads: (path from the repository root, function) -> why a scan is right there.
ALLOWED_SCANS: dict[tuple[str, str], str] = {
    ("documents/wallet/audit.py", "verify_ledger"): "the audit re-adds every user's entries (admin command and job)",
    ("documents/wallet/audit.py", "_wallets"): "the audit reads every wallet (admin command and job)",
    ("core/admin.py", "*"): "admin commands list and count whole collections on an operator's request",
    ("core/events_admin.py", "*"): "admin commands list event deliveries on an operator's request",
    ("documents/events/store.py", "list_deliveries"): "`python server.py events deliveries` filters on an operator's request",
    ("bench/seed.py", "*"): "the benchmark seeds and checks its own data set",
    ("bench/record.py", "*"): "the benchmark's recorder replays what it saw",
    ("core/backups.py", "*"): "backups copy and restore whole collections",
}

# Index-served filters whose few matches are sorted in memory (a blocking sort MongoDB allows): -> why it is small.
ALLOWED_SORTS: dict[tuple[str, str], str] = {
    ("documents/wallet/outbox.py", "repair_users"):
        "only users with entries pending for minutes match (sparse index); paged by _id so one busy user cannot trap it",
    ("documents/generations/store.py", "repair_generations"):
        "only generations with a refund due match (sparse index); paged by _id so refunds kept due cannot trap it",
}

EQ, RANGE, EXISTS, NEG, UNUSABLE = "eq", "range", "exists", "neg", "unusable"
_RANGE_OPS = {"$gt", "$gte", "$lt", "$lte", "$regex", "$type", "$all", "$elemMatch"}
# $ne/$nin/$not bound an index only to "everything but": MongoDB scans [MinKey, x) and (x, MaxKey], the whole index.
_NEG_OPS = {"$ne", "$nin", "$not"}
_CODEC = CodecOptions(tz_aware=True)

VIOLATIONS: list[str] = []
_state = threading.local()


@dataclass(frozen=True)
class Index:
    """One declared index: its keys in order and the options that limit its use."""

    name: str
    keys: tuple[tuple[str, int], ...]
    sparse: bool = False
    partial: Mapping[str, Any] | None = None


def declared_indexes() -> dict[str, list[Index]]:
    """The application's indexes per collection, plus `_id`, as `ensure_indexes` creates them."""
    from documents import all_indexes

    result: dict[str, list[Index]] = {}
    for collection, models in all_indexes().items():
        for model in models:
            doc = model.document
            keys = tuple((field, int(direction)) for field, direction in doc["key"].items())
            result.setdefault(collection, []).append(
                Index(doc["name"], keys, bool(doc.get("sparse")), doc.get("partialFilterExpression")))
    return result


# ------------------------------------------------------------------------------------------------ planning

def _predicates(query: Mapping[str, Any]) -> tuple[dict[str, list[tuple[str, Any]]], list[list[Mapping]]]:
    """Field -> [(kind, value)] for the AND of the filter, and the `$or` groups that must each be served."""
    fields: dict[str, list[tuple[str, Any]]] = {}
    ors: list[list[Mapping]] = []
    for key, value in (query or {}).items():
        if key == "$and":
            for part in value:
                sub, sub_ors = _predicates(part)
                for field, preds in sub.items():
                    fields.setdefault(field, []).extend(preds)
                ors.extend(sub_ors)
        elif key == "$or":
            ors.append(list(value))
        elif key.startswith("$"):
            continue  # $nor, $expr, $where, $comment: residual filters, never index bounds
        else:
            fields.setdefault(key, []).extend(_classify(value))
            match = value.get("$elemMatch") if isinstance(value, Mapping) else None
            if isinstance(match, Mapping) and not any(str(k).startswith("$") for k in match):
                # {"a": {"$elemMatch": {"b": 1}}} bounds a multikey index on "a.b" (one element satisfies all).
                sub, _ = _predicates(match)
                for field, preds in sub.items():
                    fields.setdefault(f"{key}.{field}", []).extend(preds)
    return fields, ors


def _classify(value: Any) -> list[tuple[str, Any]]:
    if not isinstance(value, Mapping) or not value or not all(str(k).startswith("$") for k in value):
        return [(EQ, value)]
    kinds = []
    for op, arg in value.items():
        if op == "$eq":
            kinds.append((EQ, arg))
        elif op == "$in":
            kinds.append((EQ, ("$in", tuple(arg))) if len(arg) != 1 else (EQ, list(arg)[0]))
        elif op == "$exists":
            kinds.append((EXISTS, bool(arg)))
        elif op in _RANGE_OPS:
            kinds.append((RANGE, (op, arg)))
        elif op in _NEG_OPS:
            kinds.append((NEG, (op, arg)))
        else:
            kinds.append((UNUSABLE, op))  # $size, $mod, $options alone, ...
    return kinds


def _bounded(preds: list[tuple[str, Any]], sparse: bool = False) -> bool:
    """Whether the predicates narrow an index on this key to less than all of it.

    On a sparse index `$exists: true` and `$ne: null` select exactly the documents the index holds (what a sparse
    index is for); on a full index they, like the other negations, cover the whole index.
    """
    if any(kind in (EQ, RANGE) for kind, _ in preds):
        return True
    return sparse and any((kind == EXISTS and value) or (kind == NEG and value == ("$ne", None)) for kind, value in preds)


def _single_equality(preds: list[tuple[str, Any]]) -> bool:
    # `$in` counts too: MongoDB merges one index scan per value to keep the sort ("explode for sort", <= 200 values).
    return any(kind == EQ and not (isinstance(v, tuple) and v[:1] == ("$in",) and len(v[1]) > 200)
               for kind, v in preds)


def _excludes_missing(preds: list[tuple[str, Any]]) -> bool:
    """True when no document missing the field can match (what makes a sparse index usable)."""
    for kind, value in preds:
        if kind == EQ:
            values = value[1] if isinstance(value, tuple) and value[:1] == ("$in",) else (value,)
            if None not in values:
                return True
        if kind == EXISTS and value:
            return True
        if kind == NEG and value == ("$ne", None):
            return True
        if kind == RANGE and value[0] in ("$gt", "$gte", "$lt", "$lte", "$regex", "$type", "$all", "$elemMatch"):
            return True
    return False


def _implies(fields: dict[str, list[tuple[str, Any]]], partial: Mapping[str, Any]) -> bool:
    """Whether the filter implies a partialFilterExpression (the forms our indexes use)."""
    for field, cond in partial.items():
        preds = fields.get(field, [])
        if isinstance(cond, Mapping) and set(cond) == {"$exists"} and cond["$exists"]:
            if not _excludes_missing(preds):
                return False
        elif isinstance(cond, Mapping) and set(cond) == {"$type"}:
            wanted = cond["$type"]
            if not any(kind == EQ and _bson_type(value) == wanted for kind, value in preds):
                return False
        elif isinstance(cond, Mapping) and set(cond) <= {"$gt", "$gte", "$lt", "$lte"}:
            if not any(kind == RANGE and value == next(iter(cond.items())) for kind, value in preds) \
                    and not any(kind == EQ and _satisfies(value, cond) for kind, value in preds):
                return False
        else:
            if not any(kind == EQ and value == (cond.get("$eq") if isinstance(cond, Mapping) else cond)
                       for kind, value in preds):
                return False
    return True


def _bson_type(value: Any) -> str | None:
    return {str: "string", int: "int", bool: "bool", float: "double"}.get(type(value))


def _satisfies(value: Any, cond: Mapping[str, Any]) -> bool:
    ops = {"$gt": operator.gt, "$gte": operator.ge, "$lt": operator.lt, "$lte": operator.le}
    try:
        return all(ops[op](value, bound) for op, bound in cond.items())
    except TypeError:
        return False


def _serves(index: Index, fields: dict[str, list[tuple[str, Any]]], sort: list[tuple[str, int]] | None) -> bool:
    leading = index.keys[0][0]
    if index.sparse and not any(_excludes_missing(fields.get(k, [])) for k, _ in index.keys):
        return False
    if index.partial is not None and not _implies(fields, index.partial):
        return False
    # Walking a whole index for its order is no scan when the filter is empty or the index is partial (it holds
    # only what the filter wants).
    walk = sort and (not fields or index.partial is not None) and _sort_matches(index, 0, sort, fields)
    if not _bounded(fields.get(leading, []), index.sparse) and not walk:
        return False
    if not sort:
        return True
    equal = 0
    while equal < len(index.keys) and _single_equality(fields.get(index.keys[equal][0], [])):
        equal += 1
    # Sort keys fixed by equality need no ordering (MongoDB drops them from the sort).
    wanted = [(f, d) for f, d in sort if not _single_equality(fields.get(f, []))]
    return not wanted or _sort_matches(index, equal, wanted, fields)


def _sort_matches(index: Index, start: int, sort: list[tuple[str, int]], fields: Mapping) -> bool:
    keys = index.keys[start:start + len(sort)]
    if [k for k, _ in keys] != [f for f, _ in sort]:
        return False
    same = all(int(d) == kd for (_, kd), (_, d) in zip(keys, sort, strict=True))
    reverse = all(int(d) == -kd for (_, kd), (_, d) in zip(keys, sort, strict=True))
    return same or reverse


def serving(indexes: list[Index], query: Mapping[str, Any] | None, sort: list[tuple[str, int]] | None) -> str | None:
    """The name of the first index that serves the filter and sort alone, if any."""
    fields, _ = _predicates(query or {})
    for index in [Index("_id_", (("_id", 1),))] + list(indexes):
        if _serves(index, fields, sort):
            return index.name
    return None


def plan(indexes: list[Index], query: Mapping[str, Any] | None, sort: list[tuple[str, int]] | None) -> str | None:
    """None when some index serves the filter and sort; otherwise why MongoDB would scan."""
    query = query or {}
    fields, ors = _predicates(query)
    if serving(indexes, query, sort) is not None:
        return None
    for group in ors:  # index union: every branch (with the ANDed rest of the filter) needs its own index
        if all(plan(indexes, {**_without_or(query, group), **branch}, None) is None for branch in group) and not sort:
            return None
    if not fields and not ors:
        return "no filter" + (f" and sort {sort} matches no index prefix" if sort else ": a collection scan")
    shape = {field: [kind for kind, _ in preds] for field, preds in fields.items()}
    return f"no declared index serves filter {shape}" + (f" with sort {sort}" if sort else "")


def _without_or(query: Mapping[str, Any], group: list[Mapping]) -> dict[str, Any]:
    return {k: v for k, v in query.items() if not (k == "$or" and list(v) == group)}


# ------------------------------------------------------------------------------------------------ write rules

_POSITIONAL = ("$", "$[]")


def _paths(update: Mapping[str, Any]) -> list[str]:
    paths = []
    for op, spec in update.items():
        if isinstance(spec, Mapping):
            paths.extend(str(p) for p in spec)
            if op == "$rename":
                paths.extend(str(v) for v in spec.values())
    return paths


def check_write(collection: str, update: Mapping[str, Any] | None = None, documents: Iterable[Mapping] = (),
                query: Mapping[str, Any] | None = None, replacement: bool = False) -> None:
    """Refuse what MongoDB refuses and mongomock accepts: mixed update documents, `$`-prefixed update paths and
    replacement fields, conflicting update paths, text BSON cannot encode, documents over 16 MiB."""
    # Encoded as the driver would (it raises UnicodeEncodeError or InvalidDocument before anything is sent).
    if query is not None:
        bson.encode({"q": query}, codec_options=_CODEC)
    if update is not None:
        bson.encode({"u": update}, codec_options=_CODEC)
    for doc in documents:
        if len(bson.encode(doc, codec_options=_CODEC)) > 16 * 1024 * 1024:
            raise WriteError(f"{collection}: BSONObj size is invalid: over 16 MiB", 10334)
    if not isinstance(update, Mapping):
        return  # None, or an aggregation-pipeline update
    operators = [k for k in update if str(k).startswith("$")]
    if replacement:
        if operators:
            raise WriteError(f"{collection}: a replacement document has $-prefixed top-level fields {operators}", 52)
        return
    if operators and len(operators) != len(update):
        raise WriteError(f"{collection}: an update document mixes operators and plain fields: {list(update)}", 9)
    if not operators:
        return
    paths = _paths(update)
    for path in paths:
        parts = path.split(".")
        if parts[0].startswith("$") or any(p.startswith("$") and p not in _POSITIONAL and not
                                           (p.startswith("$[") and p.endswith("]")) for p in parts):
            raise WriteError(f"{collection}: the update path {path!r} has a $-prefixed field", 52)
    ordered = sorted(paths)
    for a, b in zip(ordered, ordered[1:], strict=False):
        if a == b or b.startswith(a + "."):
            raise WriteError(f"{collection}: updating the path {b!r} would create a conflict at {a!r}", 40)


# ------------------------------------------------------------------------------------------------ wiring

class checking:  # noqa: N801 - used as `with index_check.checking():`
    """Check calls made by test code too (the checker's own tests)."""

    def __enter__(self) -> None:
        _state.force = True

    def __exit__(self, *exc: object) -> None:
        _state.force = False


def _call_site() -> tuple[str, str, int] | None:
    """(path, function, line) of the first frame in this repository outside tests/support, or None for test code."""
    if getattr(_state, "force", False):
        return "tests", "checking", 0
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if filename.startswith(ROOT + os.sep) and not filename.startswith((SUPPORT, VENV)):
            if filename.startswith(TESTS):
                return None
            return os.path.relpath(filename, ROOT), frame.f_code.co_name, frame.f_lineno
        frame = frame.f_back
    return None


def _check_query(coll: Collection, query: Any, sort: Any) -> None:
    if getattr(_state, "depth", 0):
        return
    site = _call_site()
    if site is None:
        return
    path, function, line = site
    if (path, function) in ALLOWED_SCANS or (path, "*") in ALLOWED_SCANS:
        return
    sort_list = [(f, int(d)) for f, d in sort] if sort else None
    indexes, query = _INDEXES.get(coll.name, []), query if isinstance(query, Mapping) else {}
    why = plan(indexes, query, sort_list)
    if why is not None and sort_list and (path, function) in ALLOWED_SORTS and plan(indexes, query, None) is None:
        why = None
    if why is None and os.environ.get("INDEX_USAGE_FILE"):
        names = [serving(indexes, query, sort_list) or serving(indexes, query, None)]
        if names[0] is None:  # an $or: each branch on its own index
            rest = {k: v for k, v in query.items() if k != "$or"}
            names = [serving(indexes, {**rest, **branch}, None) for branch in query.get("$or", [])]
        with open(os.environ["INDEX_USAGE_FILE"], "a", encoding="utf-8") as out:
            out.writelines(f"{coll.name}\t{name}\t{path}:{function}\n" for name in names if name)
    if why is not None:
        message = f"collection scan on {coll.name}: {why} (at {path}:{line} in {function})"
        VIOLATIONS.append(message)
        raise OperationFailure(f"No query solutions: {message}", 291)


class _Quiet:
    def __enter__(self) -> None:
        _state.depth = getattr(_state, "depth", 0) + 1

    def __exit__(self, *exc: object) -> None:
        _state.depth -= 1


def _wrap(name: str, filter_at: int | None, sort_kw: bool = False, update_at: int | None = None,
          docs_at: int | None = None, filter_kw: str = "filter", replacement: bool = False) -> None:
    original = getattr(Collection, name)

    def wrapper(self: Collection, *args: Any, **kwargs: Any) -> Any:
        if not getattr(_state, "depth", 0) and _call_site() is not None:
            query = kwargs.get(filter_kw, args[filter_at] if filter_at is not None and len(args) > filter_at else None)
            update = args[update_at] if update_at is not None and len(args) > update_at else kwargs.get("update")
            docs = args[docs_at] if docs_at is not None and len(args) > docs_at else kwargs.get("documents", ())
            if name == "insert_one":
                docs = [docs]
            if replacement:
                update = args[1] if len(args) > 1 else kwargs.get("replacement")
            check_write(self.name, update=update, documents=list(docs or ()),
                        query=query if isinstance(query, Mapping) else None, replacement=replacement)
            if filter_at is not None:
                _check_query(self, query, kwargs.get("sort") if sort_kw else None)
        with _Quiet():
            return original(self, *args, **kwargs)

    wrapper.__wrapped__ = original  # type: ignore[attr-defined]
    setattr(Collection, name, wrapper)


def _wrap_aggregate() -> None:
    original = Collection.aggregate

    def aggregate(self: Collection, pipeline: list, *args: Any, **kwargs: Any) -> Any:
        first = pipeline[0] if pipeline else {}
        match = first.get("$match", {}) if isinstance(first, Mapping) else {}
        sort = None
        following = pipeline[1] if "$match" in first and len(pipeline) > 1 else first
        if isinstance(following, Mapping) and "$sort" in following:
            sort = list(following["$sort"].items())
        _check_query(self, match if match else {}, sort)
        with _Quiet():
            return original(self, pipeline, *args, **kwargs)

    Collection.aggregate = aggregate


def _wrap_cursor() -> None:
    original = Collection._get_dataset

    def _get_dataset(self: Collection, spec: Any, sort: Any, fields: Any, as_class: Any) -> Any:
        _check_query(self, spec, sort)
        with _Quiet():
            return list(original(self, spec, sort, fields, as_class))

    Collection._get_dataset = _get_dataset


_INDEXES: dict[str, list[Index]] = {}
_installed = False


def install() -> None:
    """Turn the checks on for every mongomock collection in this process (idempotent)."""
    global _installed
    if _installed:
        return
    _INDEXES.update(declared_indexes())
    for name in ("find_one", "count_documents", "delete_one", "delete_many"):
        _wrap(name, 0, sort_kw=name == "find_one")
    for name in ("update_one", "update_many"):
        _wrap(name, 0, update_at=1)
    _wrap("replace_one", 0, replacement=True)
    _wrap("find_one_and_update", 0, sort_kw=True, update_at=1)
    _wrap("find_one_and_replace", 0, sort_kw=True, replacement=True)
    _wrap("find_one_and_delete", 0, sort_kw=True)
    _wrap("distinct", 1)
    _wrap("insert_one", None, docs_at=0)
    _wrap("insert_many", None, docs_at=0)
    _wrap_aggregate()
    _wrap_cursor()
    _installed = True
