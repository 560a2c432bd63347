"""The README documents every setting, every endpoint, and the two commands a new user needs."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from core.settings import Settings
from handlers import all_routes
from handlers.routing import NotFoundHandler

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def test_every_setting_is_documented():
    names = [f.metadata["env"] for f in dataclasses.fields(Settings) if f.metadata]
    missing = [name for name in names if f"`{name}`" not in README]
    assert not missing, f"settings missing from README.md: {missing}"


def test_every_endpoint_is_documented():
    missing = []
    for pattern, handler, *_ in all_routes():
        if pattern.startswith("/api/docs/static") or issubclass(handler, NotFoundHandler):
            continue  # assets and 404 fallbacks (the catch-all, unknown OAuth providers) are not endpoints
        # The README writes path parameters as {name}; compare the fixed parts.
        fixed = re.sub(r"\([^)]*\)", "{", pattern)
        prefix = fixed.split("{")[0].rstrip("/")
        for verb in handler.allowed_methods():
            if verb in ("OPTIONS", "HEAD"):
                continue
            if not re.search(rf"`{verb} {re.escape(prefix)}[^`]*`", README):
                missing.append(f"{verb} {pattern}")
    assert not missing, f"endpoints missing from README.md: {missing}"


def test_readme_gives_the_two_commands_and_ci_runs_exactly_the_test_command():
    assert "python server.py" in README and "bash .ci/run" in README
    command = re.search(r"The test command itself is `([^`]+)`", README).group(1)
    ci = (Path(__file__).resolve().parent.parent / ".ci" / "run").read_text().strip().splitlines()
    assert ci[-1].strip() == command
