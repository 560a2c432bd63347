"""A TypeScript client generated from the live /api/openapi.json type-checks a program that uses it.

clients/typescript pins openapi-typescript, openapi-fetch and TypeScript (package-lock.json); `npm ci`
runs only when the lock file changed since the last install (a stamp in node_modules). The generator
reads the running server's document, then one `tsc --noEmit` checks example.ts (register, login, order,
verify, customer) and contract-checks.ts, whose deliberate mistakes must each be a type error. Node and
npm are required, never skipped (bash .ci/run installs Debian's nodejs and npm).
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "clients" / "typescript"
STAMP = PACKAGE / "node_modules" / ".installed-lock-sha256"


async def run(*argv: str, cwd: Path, timeout: float) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(*argv, cwd=cwd, stdout=asyncio.subprocess.PIPE,
                                                   stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(process.communicate(), timeout)
    return process.returncode or 0, out.decode(errors="replace")


async def installed() -> Path:
    """node_modules matching package-lock.json (npm ci when the lock changed)."""
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        pytest.fail("Node.js and npm are required for the TypeScript client test: apt-get install nodejs npm "
                    "(bash .ci/run installs them)")
    lock = hashlib.sha256((PACKAGE / "package-lock.json").read_bytes()).hexdigest()
    if not STAMP.exists() or STAMP.read_text() != lock:
        code, out = await run(npm, "ci", "--no-audit", "--no-fund", cwd=PACKAGE, timeout=240)
        assert code == 0, out
        STAMP.write_text(lock)
    return PACKAGE / "node_modules"


@pytest.mark.timeout(300)
async def test_generated_typescript_client_type_checks_a_program_against_the_live_document(served, tmp_path):
    _, api = served
    modules = await installed()
    work = tmp_path / "ts"
    (work / "src").mkdir(parents=True)
    shutil.copy(PACKAGE / "tsconfig.json", work)
    for name in ("example.ts", "contract-checks.ts"):
        shutil.copy(PACKAGE / "src" / name, work / "src")
    (work / "node_modules").symlink_to(modules)

    code, out = await run(str(modules / ".bin" / "openapi-typescript"), f"{api.base_url}/api/openapi.json",
                          "--default-non-nullable", "false", "-o", str(work / "src" / "schema.d.ts"),
                          cwd=work, timeout=60)
    assert code == 0, out
    schema = (work / "src" / "schema.d.ts").read_text()
    assert '"/api/payments/verify"' in schema and '"/api/customer"' in schema

    code, out = await run(str(modules / ".bin" / "tsc"), "--noEmit", "-p", str(work), cwd=work, timeout=120)
    assert code == 0, f"tsc found errors (or a deliberate mistake went unnoticed):\n{out}"
