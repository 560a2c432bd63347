"""Backups on the real app: back up, wipe, restore and compare every document; refusals leave the database untouched."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import bson
import pytest
from bson import Binary, Decimal128, Int64, ObjectId, Regex
from pymongo.errors import PyMongoError

from core import backups
from core.backup_files import ENCODE, Writer
from core.backups import BackupError, create_backup, list_backups, prune_backups, restore_backup
from documents import wallet
from documents.common import acquire_lease
from documents.wallet import apply as ledger_apply
from jobs import ledger_repair
from jobs.runner import run_job
from tests.handlers.test_generation import generate
from tests.handlers.test_points import funded_user, spend

T0 = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


async def populate(service, api) -> None:
    """Users, sessions, ledger entries and a postcard through HTTP; odd BSON types written directly."""
    db = service.ctx.db
    for n in range(3):
        user = await funded_user(service, api, 10 + n)
        assert (await spend(api, user, 2, f"spend-{n}")).status == 200
        await api.post("/api/auth/login", {"email": user["email"], "password": user["password"]})
    card = await generate(api, user, {"kind": "card", "occasion": "день рождения"}, "card-1")
    assert card.status == 200, card.text
    owner = ObjectId()
    await db.misc.insert_many([
        {"_id": ObjectId(), "at": datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC), "owner": owner,
         "nested": {"list": [1, {"deep": [None, True, 1.5]}], "empty": {}}, "png": Binary(PNG),
         "raw": PNG[:16], "money": Decimal128("19.90"), "big": Int64(2**40), "uuidish": Binary(bytes(16), 4),
         "pattern": Regex("^a.b$", "i"), "text": "Привет"},
        # Other _id types in the same collection: a backup must not skip them.
        {"_id": "string-id", "at": datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC)},
        {"_id": 42, "refs": [owner, ObjectId()]},
    ])
    await db.audit_notes.insert_one({"_id": ObjectId(), "note": "a collection no module declares"})
    await acquire_lease(db, "job:someone", "elsewhere:1", T0, timedelta(hours=1))


async def snapshot(db) -> dict[str, list]:
    """Every document of every collection (leases aside), in _id order."""
    names = sorted(n for n in await db.list_collection_names() if n != "leases")
    return {name: await db[name].find({}, sort=[("_id", 1)]).to_list(None) for name in names}


def as_stored(docs: list) -> list[bytes]:
    """Documents as the BSON MongoDB holds: equal bytes mean equal values, types, subtypes and key order."""
    return [bson.encode(d, codec_options=ENCODE) for d in docs]


def assert_same(before: dict, after: dict) -> None:
    """Same non-empty collections holding byte-identical documents."""
    assert sorted(k for k, v in before.items() if v) == sorted(k for k, v in after.items() if v)
    for name, docs in before.items():
        # Decoded again so a failure shows readable documents (mongomock hands back Binary(.., 0) as it was
        # inserted, where a real server returns bytes: the BSON is the same).
        assert [bson.decode(d) for d in as_stored(after.get(name, []))] == [bson.decode(d) for d in as_stored(docs)]
        assert as_stored(after.get(name, [])) == as_stored(docs), name


async def wipe(db) -> None:
    """Drop every collection, as after losing the database."""
    for name in await db.list_collection_names():
        await db[name].drop()


async def test_back_up_wipe_restore_gives_back_every_document(api, service, tmp_path, monkeypatch):
    db = service.ctx.db
    await populate(service, api)
    # Tiny chunks so both directions really go chunk by chunk.
    monkeypatch.setattr(backups, "FIRST_CHUNK_DOCS", 2)
    monkeypatch.setattr(backups, "CHUNK_BYTES", 2000)
    monkeypatch.setattr("core.backup_files.CHUNK_DOCS", 3)
    before = await snapshot(db)
    indexes = {n: sorted(await db[n].index_information()) for n in before}
    assert len(before["generation_images"]) == 1 and len(before["users"]) == 3 and len(before["misc"]) == 3

    result = await create_backup(db, tmp_path, T0)
    await wipe(db)
    summary = await restore_backup(db, result["path"])

    after = await snapshot(db)
    assert_same(before, after)
    assert {n: sorted(await db[n].index_information()) for n in before} == indexes
    assert summary["documents"] == sum(len(d) for d in before.values()) and summary["indexes_not_recreated"] == {}
    assert await db.leases.count_documents({}) == 0  # leases are live locks, not data
    image = await db.generation_images.find_one()
    assert bytes(image["png"]).startswith(b"\x89PNG") and image["created_at"].utcoffset() == timedelta(0)


async def test_backup_folder_has_the_documented_layout(api, service, tmp_path):
    db = service.ctx.db
    await populate(service, api)
    result = await create_backup(db, tmp_path, T0)
    folder = Path(result["path"])
    assert folder == tmp_path / "2026-11-26T030000Z" and os.listdir(tmp_path) == [folder.name]
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["format"] == 1 and manifest["created_at"] == "2026-11-26T03:00:00Z"
    assert manifest["database"] == service.ctx.settings.mongo_db and manifest["skipped"] == ["leases"]
    assert "leases" not in manifest["collections"] and not (folder / "leases.bson.gz").exists()
    for name, entry in manifest["collections"].items():
        stream = gzip.decompress((folder / entry["file"]).read_bytes())
        assert entry["file"] == f"{name}.bson.gz" and entry["bytes"] == len(stream)
        assert entry["sha256"] == hashlib.sha256(stream).hexdigest()
        assert entry["count"] == len(bson.decode_all(stream)) == await db[name].count_documents({})
    assert list(manifest["collections"])[-2:] == ["transactions", "users"]  # the ledger right before the wallets
    email_index = next(i for i in manifest["indexes"]["users"] if i["key"] == [["email", 1]])
    assert email_index["unique"] is True


async def test_a_backup_in_the_same_second_gets_its_own_folder(service, tmp_path):
    first = await create_backup(service.ctx.db, tmp_path, T0)
    second = await create_backup(service.ctx.db, tmp_path, T0)
    assert [p.name for p in list_backups(tmp_path)] == [Path(first["path"]).name, Path(second["path"]).name]
    assert Path(second["path"]).name == "2026-11-26T030000Z-1"


def flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x40
    path.write_bytes(bytes(data))


def edit_manifest(folder: Path, change) -> None:
    manifest = json.loads((folder / "manifest.json").read_text())
    change(manifest)
    (folder / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("damage", ["flipped byte", "count", "sha256", "missing file", "no manifest"])
async def test_a_damaged_backup_is_refused_and_the_database_is_untouched(api, service, tmp_path, damage):
    db = service.ctx.db
    await populate(service, api)
    folder = Path((await create_backup(db, tmp_path, T0))["path"])
    if damage == "flipped byte":
        flip_byte(folder / "users.bson.gz")
    elif damage == "count":
        edit_manifest(folder, lambda m: m["collections"]["users"].update(count=4))
    elif damage == "sha256":
        edit_manifest(folder, lambda m: m["collections"]["transactions"].update(sha256="0" * 64))
    elif damage == "missing file":
        (folder / "sessions.bson.gz").unlink()
    else:
        (folder / "manifest.json").unlink()
    await db.users.update_one({}, {"$set": {"marker": "after the backup"}})
    before = await snapshot(db)
    with pytest.raises(BackupError) as refused:
        await restore_backup(db, folder, drop=True)  # even --drop changes nothing when the check fails
    expected = {"flipped byte": "users", "count": "count 3 != manifest 4", "sha256": "transactions",
                "missing file": "sessions.bson.gz is missing", "no manifest": "not a complete backup"}[damage]
    assert expected in str(refused.value)
    assert_same(before, await snapshot(db))


async def test_restore_without_drop_into_a_database_with_data_is_refused(api, service, tmp_path):
    db = service.ctx.db
    await populate(service, api)
    folder = (await create_backup(db, tmp_path, T0))["path"]
    await db.users.delete_many({"email": {"$regex": "^user-"}, "points.balance": 10})
    before = await snapshot(db)
    with pytest.raises(BackupError, match="pass --drop"):
        await restore_backup(db, folder)
    assert_same(before, await snapshot(db))


async def test_restore_with_drop_replaces_the_whole_database(api, service, tmp_path):
    db = service.ctx.db
    await populate(service, api)
    original = await snapshot(db)
    folder = (await create_backup(db, tmp_path, T0))["path"]
    await funded_user(service, api, 5)
    await db.misc.delete_many({})
    await db.added_later.insert_one({"x": 1})
    summary = await restore_backup(db, folder, drop=True)
    after = await snapshot(db)
    assert "added_later" not in after and "added_later" in summary["dropped"]
    assert_same(original, after)
    assert await db.leases.count_documents({"_id": "job:someone"}) == 1  # a running job's lease survives


async def test_pruning_keeps_the_newest_and_leaves_running_and_foreign_folders(service, tmp_path):
    for day in range(5):
        await create_backup(service.ctx.db, tmp_path, T0 + timedelta(days=day))
    running = tmp_path / ".tmp-2026-12-01T030000Z-abcd1234"
    crashed = tmp_path / ".tmp-2026-11-20T030000Z-deadbeef"
    for temp in (running, crashed):
        temp.mkdir()
        (temp / "users.bson.gz").write_bytes(b"partial")
    old = time.time() - 2 * 86400
    for path in (crashed, crashed / "users.bson.gz"):
        os.utime(path, (old, old))
    (tmp_path / "2026-11-01T030000Z").mkdir()  # no manifest: not a backup of ours, never counted or deleted
    pruned = prune_backups(tmp_path, 3)
    assert pruned == {"removed": ["2026-11-26T030000Z", "2026-11-27T030000Z"],
                      "stale_temps_removed": [crashed.name]}
    assert [p.name for p in list_backups(tmp_path)] == ["2026-11-28T030000Z", "2026-11-29T030000Z", "2026-11-30T030000Z"]
    assert running.is_dir() and not crashed.exists() and (tmp_path / "2026-11-01T030000Z").is_dir()
    assert prune_backups(tmp_path, 3) == {"removed": [], "stale_temps_removed": []}


async def test_a_backup_failing_midway_leaves_no_dated_folder(api, service, tmp_path, monkeypatch):
    await populate(service, api)
    monkeypatch.setattr(backups, "FIRST_CHUNK_DOCS", 1)
    calls = []
    real_write = Writer.write

    def failing_write(self, docs):
        calls.append(len(docs))
        if len(calls) == 4:
            raise OSError(28, "No space left on device")
        real_write(self, docs)

    monkeypatch.setattr(Writer, "write", failing_write)
    with pytest.raises(OSError, match="No space"):
        await create_backup(service.ctx.db, tmp_path, T0)
    assert os.listdir(tmp_path) == [] and list_backups(tmp_path) == []

    # A hard crash (no clean-up at all) leaves only a temp folder, which is neither listed nor restorable.
    monkeypatch.setattr(backups.shutil, "rmtree", lambda *a, **k: None)
    calls.clear()
    with pytest.raises(OSError):
        await create_backup(service.ctx.db, tmp_path, T0)
    (leftover,) = os.listdir(tmp_path)
    assert leftover.startswith(".tmp-2026-11-26T030000Z-") and list_backups(tmp_path) == []
    with pytest.raises(BackupError, match="not a complete backup"):
        await restore_backup(service.ctx.db, tmp_path / leftover)


async def test_restore_refuses_a_path_that_is_not_a_backup(service, tmp_path):
    with pytest.raises(BackupError, match="no backup at"):
        await restore_backup(service.ctx.db, tmp_path / "nope")
    (tmp_path / "manifest.json").write_text('{"format": 1, "created_at": "x", "collections": {"u": {"file": "../x"}}}')
    with pytest.raises(BackupError, match="malformed entry"):
        await restore_backup(service.ctx.db, tmp_path)


async def test_an_operation_between_the_ledger_and_wallet_reads_is_finished_by_ledger_repair(
        api, service, tmp_path, monkeypatch):
    db = service.ctx.db
    user = await funded_user(service, api, 10)
    real_dump = backups._dump

    async def entry_not_written_yet(*args, **kwargs):
        raise PyMongoError("the entry write had not happened when the backup read the wallet")

    async def dump_while_the_app_spends(collection, path):
        result = await real_dump(collection, path)
        if collection.name == "transactions":  # a spend lands after the ledger was read, before the wallets
            with monkeypatch.context() as m:
                m.setattr(ledger_apply, "write_settled", entry_not_written_yet)
                assert (await spend(api, user, 3, "between-reads")).status == 200
        return result

    monkeypatch.setattr(backups, "_dump", dump_while_the_app_spends)
    folder = (await create_backup(db, tmp_path, T0))["path"]
    await wipe(db)
    await restore_backup(db, folder)
    assert await wallet.find_entry(db, user["userId"], "spend:between-reads") is None  # only in the wallet's outbox
    base = service.ctx.now()
    service.ctx.clock = lambda: base + timedelta(minutes=1)
    repaired = await run_job(service.ctx, ledger_repair.JOB)
    assert repaired.summary["entries_written"] == 1
    entry = await wallet.find_entry(db, user["userId"], "spend:between-reads")
    assert entry.amount == -3 and entry.balance_after == 7
    audit = await wallet.verify_ledger(db)
    assert audit.ok and audit.pending == []
