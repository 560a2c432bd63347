"""A MongoDB over the wire for driver-level fault tests: mockupdb speaks OP_MSG, mongomock holds the data.

The app connects with its real Motor/PyMongo client (MONGO_URL), so server selection, timeouts,
retryable writes and error mapping run exactly as in production. The server presents itself as the
primary of a one-member replica set (wire version 21, sessions supported), applies each command to
an in-memory mongomock database, and remembers the answer of every retryable write by
(lsid, txnNumber) the way a real primary does, so a driver retry of an already-applied write is
answered from that record instead of being applied twice. Faults are injected per command:
a step-down (code 10107, with an election during which no primary is reported), a connection
closed after the write was applied, or a server that stops answering altogether.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import mongomock
from mockupdb import MockupDB
from pymongo import IndexModel, ReturnDocument
from pymongo.errors import CollectionInvalid, DuplicateKeyError, OperationFailure

HELLO = ("hello", "ismaster", "isMaster")
WRITES = ("insert", "update", "delete", "findAndModify")
NEVER = 0.0


@dataclass
class Fault:
    """What to do to the next `times` matching commands: step_down | hang_up_after | drop."""

    command: str
    collection: str | None = None
    action: str = "step_down"
    times: int = 1
    election_s: float = 0.0  # step_down: how long hello reports no primary afterwards
    where: Callable[[dict], bool] | None = None  # only commands whose document passes
    hits: int = 0

    def matches(self, name: str, doc: dict) -> bool:
        return self.hits < self.times and name == self.command and (
            self.collection is None or doc.get(name) == self.collection) and (self.where is None or self.where(doc))


def moves_balance(doc: dict) -> bool:
    """A findAndModify that changes a wallet balance: the ledger's one write per credit, spend or clawback."""
    return "points.balance" in ((doc.get("update") or {}).get("$inc") or {})


class WireMongo:
    """The server; `start()` returns its port, `url` is the MONGO_URL to give the app."""

    def __init__(self, port: int | None = None) -> None:
        self.mock = MockupDB(port=port, auto_ismaster=False, request_timeout=5)
        self.store = mongomock.MongoClient()
        self.faults: list[Fault] = []
        self.hung = False  # True: accept connections, answer nothing (a hung or partitioned server)
        self.applied: dict[tuple[str, str], int] = {}  # (command, collection) -> writes applied
        self.received: dict[str, int] = {}
        self.unanswered = 0  # commands (hello aside) read while hung and never answered
        self.writes: list[tuple[str, str, dict]] = []  # writes that changed something: (command, collection, document)
        self._no_primary_until = NEVER
        self._txn_replies: dict[tuple[bytes, int], dict] = {}
        self._lock = threading.Lock()
        self.port = 0

    @property
    def url(self) -> str:
        """What MONGO_URL should be."""
        return f"mongodb://127.0.0.1:{self.port}/?replicaSet=rs0"

    def start(self) -> int:
        """Listen (on the given port or a free one) and serve until stop()."""
        self.mock.autoresponds(self._handle)
        self.port = self.mock.run()
        return self.port

    def stop(self) -> None:
        """Close every connection and stop listening (the port then refuses connections)."""
        self.mock.stop()

    def restart(self) -> None:
        """Listen again on the same port with the same data (MongoDB back after an outage)."""
        self.mock = MockupDB(port=self.port, auto_ismaster=False, request_timeout=5)
        self.start()

    def inject(self, fault: Fault) -> Fault:
        """Apply `fault` to the next matching commands."""
        self.faults.append(fault)
        return fault

    def count(self, command: str, collection: str) -> int:
        """How many times a write command on a collection was applied (retries answered from the record excluded)."""
        return self.applied.get((command, collection), 0)

    def balance_changes(self) -> list[dict]:
        """The applied findAndModify updates that moved a wallet balance (the ledger's step 2), oldest first."""
        return [doc["update"] for name, coll, doc in self.writes
                if name == "findAndModify" and coll == "users" and moves_balance(doc)]

    # ---- protocol ---------------------------------------------------------------------------
    def _hello(self) -> dict:
        me = f"127.0.0.1:{self.port}"
        primary = time.monotonic() >= self._no_primary_until
        doc = {"ismaster": primary, "isWritablePrimary": primary, "secondary": False, "helloOk": True,
               "setName": "rs0", "hosts": [me], "me": me, "minWireVersion": 0, "maxWireVersion": 21,
               "logicalSessionTimeoutMinutes": 30, "maxBsonObjectSize": 16 * 1024 * 1024,
               "maxMessageSizeBytes": 48_000_000, "maxWriteBatchSize": 100_000,
               "localTime": datetime.now(UTC), "setVersion": 1}
        if primary:
            doc["primary"] = me
        return doc

    def _handle(self, request: Any) -> bool:
        name = request.command_name
        doc = request.doc
        if self.hung:
            if name not in HELLO:
                self.unanswered += 1
            return True  # read and never answered: the client waits for its own timeout
        if name in HELLO:
            request.replies(self._hello())
            return True
        self.received[name] = self.received.get(name, 0) + 1
        fault = next((f for f in self.faults if f.matches(name, doc)), None)
        if fault is not None:
            fault.hits += 1
            if fault.action == "drop":
                return True
            if fault.action == "step_down":
                self._no_primary_until = time.monotonic() + fault.election_s
                request.replies({"ok": 0, "code": 10107, "codeName": "NotWritablePrimary",
                                 "errmsg": "not primary", "errorLabels": ["RetryableWriteError"]})
                return True
        reply = self._answer(name, doc)
        if fault is not None and fault.action == "hang_up_after":
            request.hangs_up()  # applied, recorded, but the client never sees the answer
            return True
        request.replies(reply)
        return True

    def _answer(self, name: str, doc: dict) -> dict:
        txn = None
        if name in WRITES and "txnNumber" in doc and "lsid" in doc:
            txn = (bytes(doc["lsid"]["id"]), int(doc["txnNumber"]))
            if txn in self._txn_replies:
                return self._txn_replies[txn]  # a retry of an applied write: its recorded answer
        if name in WRITES and time.monotonic() < self._no_primary_until:
            return {"ok": 0, "code": 10107, "codeName": "NotWritablePrimary", "errmsg": "not primary",
                    "errorLabels": ["RetryableWriteError"]}
        with self._lock:
            try:
                reply = self._execute(name, doc)
            except OperationFailure as exc:
                reply = {"ok": 0, "code": exc.code or 8, "errmsg": str(exc)}
        if txn is not None and reply.get("ok", 1):
            self._txn_replies[txn] = reply
        return reply

    # ---- commands ---------------------------------------------------------------------------
    def _execute(self, name: str, doc: dict) -> dict:
        db = self.store[doc["$db"]]
        handler = getattr(self, "_cmd_" + name, None)
        if handler is None:
            return {"ok": 1} if name in ("ping", "endSessions", "killCursors") else {
                "ok": 0, "code": 59, "errmsg": f"no such command: '{name}'"}
        reply = handler(db, doc)
        if name in WRITES:
            key = (name, doc[name])
            self.applied[key] = self.applied.get(key, 0) + 1
            if reply.get("n", (reply.get("lastErrorObject") or {}).get("n", 0)):
                self.writes.append((name, doc[name], doc))
        return reply

    @staticmethod
    def _cursor(db: Any, coll: str, docs: list) -> dict:
        return {"cursor": {"id": 0, "ns": f"{db.name}.{coll}", "firstBatch": docs}, "ok": 1}

    def _cmd_buildInfo(self, db: Any, doc: dict) -> dict:  # noqa: N802 - MongoDB's command name
        return {"version": "7.0.0", "versionArray": [7, 0, 0, 0], "ok": 1}

    def _cmd_insert(self, db: Any, doc: dict) -> dict:
        errors, n = [], 0
        for i, item in enumerate(doc.get("documents", [])):
            try:
                db[doc["insert"]].insert_one(item)
                n += 1
            except DuplicateKeyError as exc:
                errors.append({"index": i, "code": 11000, "errmsg": str(exc)})
                if doc.get("ordered", True):
                    break
        return {"n": n, "ok": 1, **({"writeErrors": errors} if errors else {})}

    def _cmd_update(self, db: Any, doc: dict) -> dict:
        coll = db[doc["update"]]
        n = modified = 0
        upserted, errors = [], []
        for i, spec in enumerate(doc.get("updates", [])):
            kwargs = {"upsert": spec.get("upsert", False)}
            if spec.get("arrayFilters"):
                kwargs["array_filters"] = spec["arrayFilters"]
            replace = isinstance(spec["u"], dict) and not any(k.startswith("$") for k in spec["u"])
            try:
                if replace:
                    result = coll.replace_one(spec["q"], spec["u"], upsert=kwargs["upsert"])
                elif spec.get("multi"):
                    result = coll.update_many(spec["q"], spec["u"], **kwargs)
                else:
                    result = coll.update_one(spec["q"], spec["u"], **kwargs)
            except DuplicateKeyError as exc:
                errors.append({"index": i, "code": 11000, "errmsg": str(exc)})
                break
            n += result.matched_count
            modified += result.modified_count
            if result.upserted_id is not None:
                n += 1
                upserted.append({"index": i, "_id": result.upserted_id})
        reply = {"n": n, "nModified": modified, "ok": 1}
        if upserted:
            reply["upserted"] = upserted
        if errors:
            reply["writeErrors"] = errors
        return reply

    def _cmd_delete(self, db: Any, doc: dict) -> dict:
        coll, n = db[doc["delete"]], 0
        for spec in doc.get("deletes", []):
            result = coll.delete_one(spec["q"]) if spec.get("limit") == 1 else coll.delete_many(spec["q"])
            n += result.deleted_count
        return {"n": n, "ok": 1}

    def _cmd_find(self, db: Any, doc: dict) -> dict:
        cursor = db[doc["find"]].find(doc.get("filter", {}), doc.get("projection"))
        if doc.get("sort"):
            cursor = cursor.sort(list(doc["sort"].items()))
        if doc.get("skip"):
            cursor = cursor.skip(doc["skip"])
        if doc.get("limit"):
            cursor = cursor.limit(abs(doc["limit"]))
        return self._cursor(db, doc["find"], list(cursor))

    def _cmd_aggregate(self, db: Any, doc: dict) -> dict:
        return self._cursor(db, doc["aggregate"], list(db[doc["aggregate"]].aggregate(doc["pipeline"])))

    def _cmd_findAndModify(self, db: Any, doc: dict) -> dict:  # noqa: N802 - MongoDB's command name
        coll = db[doc["findAndModify"]]
        query, sort, fields = doc.get("query", {}), doc.get("sort"), doc.get("fields")
        sort_list = list(sort.items()) if sort else None
        existed = coll.find_one(query, sort=sort_list) is not None
        if doc.get("remove"):
            value = coll.find_one_and_delete(query, projection=fields, sort=sort_list)
            return {"lastErrorObject": {"n": int(value is not None)}, "value": value, "ok": 1}
        update = doc["update"]
        after = ReturnDocument.AFTER if doc.get("new") else ReturnDocument.BEFORE
        kwargs = {"projection": fields, "sort": sort_list, "upsert": doc.get("upsert", False), "return_document": after}
        if doc.get("arrayFilters"):
            kwargs["array_filters"] = doc["arrayFilters"]
        if isinstance(update, dict) and not any(k.startswith("$") for k in update):
            kwargs.pop("array_filters", None)
            value = coll.find_one_and_replace(query, update, **kwargs)
        else:
            value = coll.find_one_and_update(query, update, **kwargs)
        upserted = not existed and doc.get("upsert", False)
        return {"lastErrorObject": {"n": int(existed or upserted), "updatedExisting": existed}, "value": value, "ok": 1}

    def _cmd_createIndexes(self, db: Any, doc: dict) -> dict:  # noqa: N802 - MongoDB's command name
        models = [IndexModel(list(spec["key"].items()), **{k: v for k, v in spec.items() if k not in ("key", "v")})
                  for spec in doc["indexes"]]
        db[doc["createIndexes"]].create_indexes(models)
        return {"ok": 1}

    def _cmd_listIndexes(self, db: Any, doc: dict) -> dict:  # noqa: N802 - MongoDB's command name
        info = db[doc["listIndexes"]].index_information()
        docs = [{"v": 2, "name": name, **{k: v for k, v in spec.items() if k != "key"}, "key": dict(spec["key"])}
                for name, spec in info.items()]
        return self._cursor(db, doc["listIndexes"], docs)

    def _cmd_listCollections(self, db: Any, doc: dict) -> dict:  # noqa: N802 - MongoDB's command name
        wanted = (doc.get("filter") or {}).get("name")
        names = [n for n in db.list_collection_names() if wanted is None or n == wanted]
        return self._cursor(db, "$cmd.listCollections", [{"name": n, "type": "collection", "options": {}} for n in names])

    def _cmd_create(self, db: Any, doc: dict) -> dict:
        try:
            db.create_collection(doc["create"])
        except CollectionInvalid as exc:
            return {"ok": 0, "code": 48, "codeName": "NamespaceExists", "errmsg": str(exc)}
        return {"ok": 1}

    def _cmd_drop(self, db: Any, doc: dict) -> dict:
        db.drop_collection(doc["drop"])
        return {"ok": 1}
