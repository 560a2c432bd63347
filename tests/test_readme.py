"""The README is the front door: the two commands, every endpoint, and links to where every setting is documented.

Settings may be documented in README.md or in a docs/ page README.md links to (the full table is in
docs/configuration.md); endpoints, including the development-only ones, must stay in the README's own list.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import tornado.web

from core.settings import Settings
from handlers import all_routes
from handlers.routing import NotFoundHandler

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
MAX_LINES = 250


def linked_pages() -> dict[str, str]:
    """Every docs/ page README.md links to: {path: text}."""
    paths = dict.fromkeys(re.findall(r"\]\((docs/[^)#\s]+\.md)(?:#[^)]*)?\)", README))
    return {path: (ROOT / path).read_text(encoding="utf-8") for path in paths}


def verbs(handler: type) -> list[str]:
    """The HTTP methods a handler class implements (APIHandlers and plain Tornado handlers alike)."""
    base = tornado.web.RequestHandler
    return [m for m in HTTP_METHODS if m not in ("OPTIONS", "HEAD")
            and getattr(handler, m.lower(), None) is not getattr(base, m.lower(), None)]


def test_every_setting_is_documented_in_the_readme_or_a_page_it_links():
    documented = README + "".join(linked_pages().values())
    names = [f.metadata["env"] for f in dataclasses.fields(Settings) if f.metadata]
    missing = [name for name in names if f"`{name}`" not in documented]
    assert not missing, f"settings missing from README.md and the docs/ pages it links: {missing}"
    assert "docs/configuration.md" in linked_pages()


def test_every_linked_page_exists():
    for target in re.findall(r"\]\(((?:docs|rustore|clients)/[^)#\s]+)(?:#[^)]*)?\)", README):
        assert (ROOT / target).exists(), f"README.md links to {target}, which does not exist"


def test_every_endpoint_is_in_the_readme_list():
    missing = []
    for pattern, handler, *_ in all_routes(development=True):
        if pattern.startswith("/api/docs/static") or issubclass(handler, NotFoundHandler):
            continue  # assets and 404 fallbacks (the catch-all, unknown OAuth providers) are not endpoints
        # The README writes path parameters as {name}; compare the fixed parts.
        fixed = re.sub(r"\([^)]*\)", "{", pattern).replace("\\", "")
        prefix = fixed.split("{")[0].rstrip("/")
        for verb in verbs(handler):
            if not re.search(rf"`{verb} {re.escape(prefix)}[^`]*`", README):
                missing.append(f"{verb} {pattern}")
    assert not missing, f"endpoints missing from README.md: {missing}"


def test_readme_gives_the_two_commands_and_ci_runs_exactly_the_test_command():
    assert "python server.py" in README and "bash .ci/run" in README
    command = re.search(r"The test command itself is `([^`]+)`", README).group(1)
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()
    assert ci[-1].strip() == command


def test_readme_is_a_front_door():
    assert len(README.splitlines()) < MAX_LINES
    assert "```mermaid" in README and "sequenceDiagram" in README  # the purchase sequence, as one picture


def test_rustore_readme_links_exist_and_its_emulator_example_targets_the_webhook_route():
    from rustore.emulator.__main__ import parse_args

    text = (ROOT / "rustore" / "README.md").read_text(encoding="utf-8")
    for target in re.findall(r"\]\((\.\./[^)#\s]+|[^):#\s]+\.md)(?:#[^)]*)?\)", text):
        assert (ROOT / "rustore" / target).resolve().exists(), f"rustore/README.md links to {target}, which does not exist"
    command = re.search(r"python -m rustore\.emulator (.+?)\n```", text, re.S).group(1)
    args = parse_args(command.replace("\\\n", " ").split())
    webhook = re.sub(r"^https?://[^/]+", "", args.notification_url)
    routes = [pattern for pattern, *_ in all_routes()]
    assert webhook in routes, f"the standalone example sends webhooks to {webhook}, which is not a route"
