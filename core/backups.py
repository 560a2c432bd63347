"""Database backups: every collection to a dated folder of gzipped BSON with a checksummed manifest, and back.

This lives in core/, not documents/: it knows no collection's rules and treats every collection alike, like
the rest of the process plumbing. One backup is a folder, written as `.tmp-<stamp>-<random>` next to the
others and renamed when complete, so a dated folder is always a whole backup:

    <BACKUP_DIR>/2026-11-26T030000Z/
        users.bson.gz    the collection's documents as concatenated BSON, sorted by _id, gzipped
        ...
        manifest.json    {format, created_at, database, skipped, collections: {name: {file, count, sha256, bytes}},
                          indexes: {name: [index specs]}}

`sha256` and `bytes` describe the uncompressed BSON stream: `gunzip -c users.bson.gz | sha256sum` checks a
file by hand, and `mongorestore` / `bsondump` read the gunzipped files. The file format (writing, reading,
checking) is in `core.backup_files`; this module talks to MongoDB and manages the folders.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from core.backup_files import (
    CHUNK_BYTES,
    CHUNK_DOCS,
    FORMAT,
    MANIFEST,
    SKIPPED,
    BackupError,
    Reader,
    Writer,
    file_name,
    fsync_dir,
    index_specs,
    verify_backup,
    write_json,
)
from documents import ensure_indexes

__all__ = ["BackupError", "create_backup", "latest_backup_time", "list_backups", "prune_backups", "restore_backup",
           "verify_backup"]

TEMP_PREFIX = ".tmp-"
STAMP_FORMAT = "%Y-%m-%dT%H%M%SZ"
BACKUP_NAME = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{6}Z)(?:-(\d+))?$")
# A temp folder this old belongs to a backup that crashed (a run holds its lease for hours, not a day).
STALE_TEMP = timedelta(days=1)
FIRST_CHUNK_DOCS = 100
# Without a snapshot, collections are read one after another. The ledger's entries are read last but one
# and the wallets right after them: an operation landing between those reads is then still in its wallet's
# outbox in the backup, and `ledger-repair` writes its entry after a restore (see docs/backups.md).
LEDGER_LAST = ("transactions", "users")


def _collections(names: list[str]) -> list[str]:
    """The collections a backup holds, in the order they are read."""
    names = sorted(n for n in names if n not in SKIPPED and not n.startswith("system."))
    return [n for n in names if n not in LEDGER_LAST] + [n for n in LEDGER_LAST if n in names]


async def create_backup(db: Any, directory: str | Path, now: datetime) -> dict:
    """Write every collection to `directory/<UTC stamp>/` through a temp folder; return {path, manifest}."""
    directory = Path(directory)
    # Owner-only: backups hold e-mails and password hashes.
    await asyncio.to_thread(directory.mkdir, mode=0o700, parents=True, exist_ok=True)
    stamp = now.astimezone(UTC).strftime(STAMP_FORMAT)
    temp = directory / f"{TEMP_PREFIX}{stamp}-{secrets.token_hex(4)}"
    await asyncio.to_thread(temp.mkdir, mode=0o700)
    try:
        collections: dict[str, dict] = {}
        indexes: dict[str, list] = {}
        for name in _collections(await db.list_collection_names()):
            collections[name] = await _dump(db[name], temp / file_name(name))
            indexes[name] = index_specs(await db[name].index_information())
        manifest = {"format": FORMAT, "created_at": now.astimezone(UTC).isoformat().replace("+00:00", "Z"),
                    "database": db.name, "skipped": sorted(SKIPPED), "collections": collections, "indexes": indexes}
        final = await asyncio.to_thread(_publish, temp, directory, stamp, manifest)
    except BaseException:
        # Synchronous on purpose: it must also run when the task is being cancelled.
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return {"path": str(final), "manifest": manifest}


async def _dump(collection: Any, path: Path) -> dict:
    """Stream one collection into its file in chunks of about CHUNK_BYTES; encoding and gzip run in a thread."""
    writer = await asyncio.to_thread(Writer, path)
    try:
        chunk: list[dict] = []
        limit = FIRST_CHUNK_DOCS
        # One cursor in _id order: each document is read once even while others are updated, and unlike
        # `_id > last` paging it cannot skip documents whose _id has another BSON type.
        async for doc in collection.find({}, sort=[("_id", 1)], batch_size=CHUNK_DOCS):
            chunk.append(doc)
            if len(chunk) >= limit:
                await asyncio.to_thread(writer.write, chunk)
                chunk = []
                # Size the next chunk from the average document so far: small documents go 1000 at a time,
                # postcards (hundreds of kB of PNG each) a few dozen, keeping memory near CHUNK_BYTES.
                limit = max(1, min(CHUNK_DOCS, CHUNK_BYTES * writer.count // max(1, writer.bytes)))
        if chunk:
            await asyncio.to_thread(writer.write, chunk)
        return await asyncio.to_thread(writer.close)
    except BaseException:
        writer.abort()
        raise


def _publish(temp: Path, directory: Path, stamp: str, manifest: dict) -> Path:
    """Seal the temp folder (manifest last, everything fsynced) and rename it to its dated name."""
    write_json(temp / MANIFEST, manifest)
    fsync_dir(temp)
    final, n = directory / stamp, 0
    while final.exists():  # two backups within one second (an on-demand one right after the job)
        n += 1
        final = directory / f"{stamp}-{n}"
    os.rename(temp, final)  # atomic within one filesystem, and temp is always a sibling
    fsync_dir(directory)
    return final


def _sort_key(path: Path) -> tuple[str, int]:
    match = BACKUP_NAME.match(path.name)
    assert match is not None
    return match.group(1), int(match.group(2) or 0)


def list_backups(directory: str | Path) -> list[Path]:
    """Completed backups in `directory` (dated folders holding a manifest), oldest first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [p for p in directory.iterdir() if BACKUP_NAME.match(p.name) and (p / MANIFEST).is_file()]
    return sorted(found, key=_sort_key)


def latest_backup_time(directory: str | Path) -> datetime | None:
    """When the newest completed backup was taken (from its folder name), or None."""
    backups = list_backups(directory)
    if not backups:
        return None
    return datetime.strptime(_sort_key(backups[-1])[0], STAMP_FORMAT).replace(tzinfo=UTC)


def prune_backups(directory: str | Path, keep: int) -> dict:
    """Keep the newest `keep` completed backups; remove temp folders of crashed runs older than a day."""
    directory = Path(directory)
    backups = list_backups(directory)
    removed = backups[:-keep] if keep > 0 else []  # keep <= 0 would delete everything: treat it as "never prune"
    for path in removed:
        shutil.rmtree(path)
    stale = []
    for path in directory.glob(TEMP_PREFIX + "*") if directory.is_dir() else []:
        if not path.is_dir():
            continue
        try:  # a running backup keeps writing into its temp folder, so look at its newest file
            newest = max(p.stat().st_mtime for p in [path, *path.iterdir()])
        except FileNotFoundError:  # renamed or removed meanwhile by the backup that owns it
            continue
        # Wall-clock time on purpose: file times are wall-clock, whatever clock the app was given.
        if newest < time.time() - STALE_TEMP.total_seconds():
            shutil.rmtree(path, ignore_errors=True)
            stale.append(path.name)
    return {"removed": [p.name for p in removed], "stale_temps_removed": stale}


async def restore_backup(db: Any, folder: str | Path, *, drop: bool = False) -> dict:
    """Verify the whole backup, then load it into an empty database (or, with drop, replace every collection)."""
    folder = Path(folder)
    manifest = await asyncio.to_thread(verify_backup, folder)  # raises before anything is written
    present = _collections(await db.list_collection_names())
    if drop:
        for name in present:
            await db[name].drop()
    else:
        # Restoring on top of data would mix two states of the ledger; only an explicit --drop replaces them.
        busy = [name for name in present if await db[name].find_one({}, {"_id": 1}) is not None]
        if busy:
            raise BackupError(f"refusing to restore into a database that has data (in {', '.join(busy)}); "
                              "pass --drop to replace every collection with the backup's. Nothing was changed.")
    # This version's indexes, before inserting, so its unique rules hold for the restored data too.
    await ensure_indexes(db)
    existing = set(await db.list_collection_names())
    counts: dict[str, int] = {}
    for name, entry in manifest["collections"].items():
        if name not in existing:
            await db.create_collection(name)
        counts[name] = await _load(db[name], name, folder / entry["file"], entry)
    missing = {}
    for name, specs in manifest.get("indexes", {}).items():
        have = set(await db[name].index_information())
        if absent := sorted(s["name"] for s in specs if s.get("name") not in have):
            missing[name] = absent
    return {"path": str(folder), "created_at": manifest["created_at"], "collections": counts,
            "documents": sum(counts.values()), "dropped": present if drop else [], "indexes_not_recreated": missing}


async def _load(collection: Any, name: str, path: Path, entry: dict) -> int:
    """Insert one collection's documents in chunks; decoding and gunzip run in a thread."""
    reader = await asyncio.to_thread(Reader, path)
    inserted = 0
    try:
        while docs := await asyncio.to_thread(reader.next_docs):
            try:
                await collection.insert_many(docs, ordered=True)
            except Exception as exc:
                raise BackupError(f"restoring {name} failed after {inserted} documents ({exc}); the database is "
                                  "partly restored: fix the cause and run restore again with --drop") from exc
            inserted += len(docs)
    finally:
        await asyncio.to_thread(reader.close)
    if (reader.count, reader.sha256) != (entry["count"], entry["sha256"]):
        raise BackupError(f"{path} changed while it was being restored; run restore again with --drop")
    return inserted
