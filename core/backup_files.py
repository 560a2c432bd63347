"""The backup file format: gzipped concatenated BSON per collection, a JSON manifest, and checking both."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import zlib
from datetime import UTC
from pathlib import Path
from typing import Any
from urllib.parse import quote

import bson
from bson import json_util
from bson.binary import UuidRepresentation
from bson.codec_options import CodecOptions
from bson.errors import InvalidBSON

FORMAT = 1
MANIFEST = "manifest.json"
# Leases are the live locks of running jobs, not data: restoring one could block a job for its whole
# term, and dropping one during a restore could let two processes run the same job.
SKIPPED = frozenset({"leases"})
CHUNK_BYTES = 8 * 1024 * 1024
CHUNK_DOCS = 1000
MAX_DOCUMENT = 16 * 1024 * 1024 + 16 * 1024  # MongoDB's 16 MiB limit plus the slack the server allows
SAFE_FILE = re.compile(r"^[A-Za-z0-9_%][A-Za-z0-9_.%~-]*\.bson\.gz$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
# Encode UUIDs as the production client decodes them (standard); decode without a UUID representation so
# every binary subtype comes back as the same Binary. Dates are UTC either way.
ENCODE = CodecOptions(tz_aware=True, tzinfo=UTC, uuid_representation=UuidRepresentation.STANDARD)
DECODE = CodecOptions(tz_aware=True, tzinfo=UTC)


class BackupError(Exception):
    """A backup cannot be written, checked or restored; the message says why and what was (not) changed."""


def file_name(collection: str) -> str:
    """The file holding a collection: its name, percent-quoted when it is not a plain file name."""
    quoted = quote(collection, safe="")
    return ("%2E" + quoted[1:] if quoted.startswith(".") else quoted) + ".bson.gz"


def index_specs(info: dict) -> list[dict]:
    """`index_information()` as JSON-ready specs: [{name, key: [[field, direction]], unique?, ...}]."""
    specs = [{"name": name, **{k: v for k, v in spec.items() if k != "ns"}} for name, spec in sorted(info.items())]
    return json.loads(json_util.dumps(specs, json_options=json_util.RELAXED_JSON_OPTIONS))


def write_json(path: Path, value: Any) -> None:
    """Write a JSON file and fsync it."""
    with open(path, "x", encoding="utf-8") as fh:
        json.dump(value, fh, indent=2, sort_keys=False)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (new files, a rename) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Writer:
    """One collection's file: BSON documents appended to a gzip stream, counted and hashed on the way."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._raw = open(path, "xb")
        # mtime=0: the same data always gives the same file, so identical backups compare equal.
        self._gz = gzip.GzipFile(filename=path.name.removesuffix(".gz"), mode="wb", fileobj=self._raw, mtime=0)
        self._sha = hashlib.sha256()
        self.count = 0
        self.bytes = 0

    def write(self, docs: list[dict]) -> None:
        """Append documents (runs in a worker thread)."""
        for doc in docs:
            data = bson.encode(doc, codec_options=ENCODE)
            self._sha.update(data)
            self._gz.write(data)
            self.count += 1
            self.bytes += len(data)

    def close(self) -> dict:
        """Finish and fsync the file; return its manifest entry."""
        self._gz.close()
        self._raw.flush()
        os.fsync(self._raw.fileno())
        self._raw.close()
        return {"file": self.path.name, "count": self.count, "sha256": self._sha.hexdigest(), "bytes": self.bytes}

    def abort(self) -> None:
        """Close without caring about the content (the temp folder is about to be removed)."""
        for fh in (self._gz, self._raw):
            try:
                fh.close()
            except OSError:
                pass


class Reader:
    """One collection's file read back in chunks of documents, counted and hashed on the way."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._gz = gzip.open(path, "rb")
        self._sha = hashlib.sha256()
        self.count = 0
        self.bytes = 0

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the BSON read so far."""
        return self._sha.hexdigest()

    def next_raw(self) -> list[bytes]:
        """The next chunk of raw BSON documents ([] at the end); BackupError when the stream is damaged."""
        chunk: list[bytes] = []
        size = 0
        try:
            while len(chunk) < CHUNK_DOCS and size < CHUNK_BYTES:
                head = self._gz.read(4)
                if not head:
                    break
                length = int.from_bytes(head, "little") if len(head) == 4 else 0
                body = self._gz.read(length - 4) if 5 <= length <= MAX_DOCUMENT else b""
                if len(body) != length - 4 or length < 5:
                    raise BackupError(f"{self.path.name}: truncated or not BSON after {self.count} documents")
                data = head + body
                self._sha.update(data)
                self.count += 1
                self.bytes += length
                chunk.append(data)
                size += length
        except (OSError, EOFError, zlib.error) as exc:  # gzip's CRC and framing checks
            raise BackupError(f"{self.path.name}: damaged gzip stream ({exc})") from None
        return chunk

    def next_docs(self) -> list[dict]:
        """The next chunk decoded ([] at the end)."""
        try:
            return [bson.decode(data, codec_options=DECODE) for data in self.next_raw()]
        except InvalidBSON as exc:
            raise BackupError(f"{self.path.name}: invalid BSON ({exc})") from None

    def close(self) -> None:
        """Close the file."""
        self._gz.close()


def read_manifest(folder: Path) -> dict:
    """The backup's manifest, checked for shape; BackupError when missing or malformed."""
    if not folder.is_dir():
        raise BackupError(f"no backup at {folder}")
    path = folder / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BackupError(f"{folder} has no {MANIFEST}, so it is not a complete backup") from None
    except (OSError, ValueError) as exc:
        raise BackupError(f"{path} is unreadable: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{path}: not a backup manifest of format {FORMAT}")
    collections = manifest.get("collections")
    if not isinstance(collections, dict) or not isinstance(manifest.get("created_at"), str):
        raise BackupError(f"{path}: missing created_at or collections")
    for name, entry in collections.items():
        ok = (isinstance(entry, dict) and name not in SKIPPED and not name.startswith("system.")
              and isinstance(entry.get("file"), str) and SAFE_FILE.match(entry["file"]) is not None
              and SHA256.match(str(entry.get("sha256"))) is not None
              and all(type(entry.get(k)) is int and entry[k] >= 0 for k in ("count", "bytes")))
        if not ok:
            raise BackupError(f"{path}: malformed entry for collection {name!r}")
    return manifest


def _check(folder: Path, name: str, entry: dict) -> str | None:
    """None when the collection's file matches its manifest entry, else what is wrong."""
    path = folder / entry["file"]
    if not path.is_file():
        return f"{name}: {entry['file']} is missing"
    try:
        reader = Reader(path)
    except OSError as exc:
        return f"{name}: {entry['file']} cannot be opened ({exc})"
    try:
        while reader.next_raw():
            pass
    except BackupError as exc:
        return f"{name}: {exc}"
    finally:
        reader.close()
    found = {"count": reader.count, "bytes": reader.bytes, "sha256": reader.sha256}
    wrong = [f"{k} {found[k]} != manifest {entry[k]}" for k in ("count", "bytes", "sha256") if found[k] != entry[k]]
    return f"{name}: {entry['file']} does not match the manifest ({'; '.join(wrong)})" if wrong else None


def verify_backup(folder: str | Path) -> dict:
    """Check every file's count, size and SHA-256 against the manifest; return it, or raise BackupError."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    problems = [p for name, entry in manifest["collections"].items() if (p := _check(folder, name, entry))]
    if problems:
        raise BackupError(f"backup {folder} failed verification:\n  - " + "\n  - ".join(problems))
    return manifest
