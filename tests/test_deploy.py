"""Deployment files checked without a Docker engine: docker-compose.yml, .env.example, deploy/nginx.conf, the
Dockerfile and .dockerignore, and the image's install step run as plain commands in a clean virtualenv."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
import yaml

from core.settings import Settings, load_settings
from tests.core.test_settings import _free_port

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")
ENV_TYPES = {f.metadata["env"]: str(f.type) for f in dataclasses.fields(Settings) if f.metadata}
# What Settings.problems() insists on in production; the test also derives this set from problems() itself.
EXPECTED_REQUIRED = {"MONGO_URL", "REDIS_URL", "JWT_SECRET", "TRUSTED_PROXIES", "RUSTORE_KEY_ID", "RUSTORE_PRIVATE_KEY",
                     "RUSTORE_APP_ID", "RUSTORE_PACKAGE_NAME", "RUSTORE_NOTIFICATION_KEY"}
RUNTIME = ["server.py", "settings.toml", "requirements.txt", "core", "handlers", "documents", "rustore", "generation",
           "jobs", "oauth"]


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def substitute(text: str, values: Mapping[str, str]) -> str:
    """Compose's interpolation: ${VAR}, ${VAR:-default}, ${VAR:?error} (which refuses to start when unset)."""
    assert not re.search(r"\$(?!\{|\$)", text), f"use ${{VAR}} forms only: {text!r}"

    def one(match: re.Match) -> str:
        name, op, arg = match.groups()
        value = values.get(name) or ""
        if op == ":?" and not value:
            raise LookupError(f"{name}: {arg}")
        return value or (arg if op == ":-" else "")
    return REFERENCE.sub(one, text).replace("$$", "$")


def references() -> dict[str, str]:
    """Every variable docker-compose.yml interpolates, with its operator (`:?` required, `:-` defaulted)."""
    return {m.group(1): m.group(2) or "" for m in REFERENCE.finditer((ROOT / "docker-compose.yml").read_text())}


def sample(name: str) -> str:
    """A value of the right type that no placeholder check refuses."""
    if ENV_TYPES.get(name, "").startswith("int"):
        return "3399750"
    return "4f9c1e7a2b8d6c3e5f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c" if name == "JWT_SECRET" else f"value-of-{name.lower()}"


def app_environment(values: Mapping[str, str]) -> dict[str, str]:
    raw = compose()["services"]["app"]["environment"]
    pairs = raw.items() if isinstance(raw, dict) else (item.split("=", 1) for item in raw)
    return {name: substitute(str(value), values) for name, value in pairs}


def filled() -> dict[str, str]:
    return {name: sample(name) for name, op in references().items() if op == ":?"}


def test_compose_runs_the_app_with_mongodb_as_a_replica_set_and_redis_behind_nginx():
    services = compose()["services"]
    assert {"app", "mongo", "redis", "nginx"} <= services.keys()
    app, mongo, redis, nginx = (services[n] for n in ("app", "mongo", "redis", "nginx"))
    env = app_environment(filled())
    assert app["build"] in (".", {"context": "."}) and env["APP_ENV"] == "production"
    mongo_url, redis_url = urlparse(env["MONGO_URL"]), urlparse(env["REDIS_URL"])
    replica_set = mongo["command"][mongo["command"].index("--replSet") + 1]
    assert mongo_url.hostname == "mongo" and parse_qs(mongo_url.query)["replicaSet"] == [replica_set]
    assert mongo["image"].startswith("mongo:") and "/data/db" in " ".join(mongo["volumes"])
    probe = " ".join(mongo["healthcheck"]["test"])
    assert "rs.initiate" in probe and f"_id: '{replica_set}'" in probe and f"host: 'mongo:{mongo_url.port or 27017}'" in probe
    assert redis_url.hostname == "redis" and redis["image"].startswith("redis:")
    assert redis["command"][redis["command"].index("--appendonly") + 1] == "yes" and "/data" in " ".join(redis["volumes"])
    assert "/api/health" in " ".join(app["healthcheck"]["test"]) and (ROOT / "core" / "healthcheck.py").is_file()
    assert {name: dep["condition"] for name, dep in app["depends_on"].items()} == {"mongo": "service_healthy",
                                                                                 "redis": "service_healthy"}
    # Only the proxy is reachable from outside; the app scales because it publishes no host port.
    assert "ports" not in app and "ports" not in mongo and "ports" not in redis and nginx["ports"]
    subnet = compose()["networks"]["edge"]["ipam"]["config"][0]["subnet"]
    assert env["TRUSTED_PROXIES"] == substitute(subnet, {}) and nginx["networks"] == ["edge"]
    assert "edge" not in mongo["networks"] and "edge" not in redis["networks"]


def test_compose_app_environment_passes_the_production_checks_and_needs_every_secret():
    env = app_environment(filled())
    settings = load_settings(env)
    assert settings.is_production and settings.problems() == []
    needed = {name for name in env if load_settings({k: v for k, v in env.items() if k != name}).problems()}
    assert EXPECTED_REQUIRED <= needed
    raw = compose()["services"]["app"]["environment"]
    for name in needed:
        found = REFERENCE.fullmatch(str(raw[name]))
        # A literal wired by compose itself, or a reference compose refuses to start without (or a safe default).
        assert found is None or found.group(2) == ":?" or (found.group(2) == ":-" and found.group(3)), name
    text = (ROOT / "docker-compose.yml").read_text()
    for name in filled():  # `docker compose up` stops with the message while any of them is unset
        with pytest.raises(LookupError, match=name):
            substitute(text, {k: v for k, v in filled().items() if k != name})


def env_file(path: Path) -> dict[str, str]:
    lines = [line.strip() for line in path.read_text().splitlines()]
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def test_env_example_lists_every_required_variable_and_an_unedited_copy_cannot_start():
    example = env_file(ROOT / ".env.example")
    required = {name for name, op in references().items() if op == ":?"}
    assert required <= example.keys() <= references().keys()
    settings = load_settings(app_environment(example))
    assert any("JWT_SECRET looks like a placeholder" in p for p in settings.problems())
    assert ".env" in (ROOT / ".gitignore").read_text().splitlines()


def test_nginx_config_terminates_tls_and_forwards_to_every_app_replica():
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    code = "\n".join(line.split("#", 1)[0] for line in conf.splitlines())
    assert code.count("{") == code.count("}")
    assert all(line.strip().endswith((";", "{", "}")) for line in code.splitlines() if line.strip())
    port = app_environment(filled())["PORT"]
    assert f"http://app:{port}" in code and "proxy_pass" in code
    for directive in ("listen 443 ssl", "ssl_certificate     /etc/nginx/tls/", "X-Forwarded-Proto $scheme",
                      "X-Forwarded-For $proxy_add_x_forwarded_for", "return 301 https://", "location = /metrics"):
        assert directive in code, directive
    volumes = " ".join(compose()["services"]["nginx"]["volumes"])
    assert "./deploy/nginx.conf:/etc/nginx/conf.d/default.conf" in volumes and ":/etc/nginx/tls" in volumes


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", "\n".join(line for line in (ROOT / "Dockerfile").read_text().splitlines()
                                          if not line.lstrip().startswith("#")))
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1].strip()) for line in text.splitlines() if line.strip()]


def pip_lines() -> list[str]:
    return [args for op, args in dockerfile() if op == "RUN" and re.search(r"\bpip\b", args)]


def test_dockerfile_is_slim_non_root_health_checked_and_installs_runtime_requirements_only():
    steps = dockerfile()
    ops = [op for op, _ in steps]
    froms = [args for op, args in steps if op == "FROM"]
    assert len(froms) == 1 and re.fullmatch(r"python:3\.11(\.\d+)?-slim(-\w+)?", froms[0])
    users = [args for op, args in steps if op == "USER"]
    assert users and users[-1] not in ("root", "0") and ops.index("USER") < ops.index("CMD")
    assert "--uid 10001" in " ".join(args for op, args in steps if op == "RUN") and users[-1] == "app"
    assert "/api/health" in next(args for op, args in steps if op == "HEALTHCHECK")
    assert json.loads(next(args for op, args in steps if op == "CMD")) == ["python", "server.py"]
    assert pip_lines(), "no pip install step"
    for line in pip_lines():
        words = shlex.split(line)
        assert words[:2] == ["pip", "install"] and "&&" not in words, line
        files = [words[i + 1] for i, w in enumerate(words) if w in ("-r", "--requirement")]
        assert files == ["requirements.txt"] and not [w for w in words[2:] if not w.startswith("-") and w not in files]
    env = " ".join(args for op, args in steps if op == "ENV")
    assert "APP_ENV=production" in env and re.search(r"PORT=(\d+)", env).group(1) == next(
        args for op, args in steps if op == "EXPOSE")
    assert "requirements-dev" not in (ROOT / "Dockerfile").read_text()


def ignore_rules() -> list[tuple[bool, re.Pattern]]:
    """.dockerignore as (negated, regex) pairs with Docker's matching: `*` within a name, `**` across folders."""
    rules = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated, pattern = line.startswith("!"), line.lstrip("!").strip("/")
        regex = re.escape(pattern).replace(r"\*\*/", "(?:.*/)?").replace(r"\*\*", ".*")
        regex = regex.replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        rules.append((negated, re.compile(regex + r"\Z")))
    return rules


def ignored(path: str, rules: list[tuple[bool, re.Pattern]]) -> bool:
    """True when the build context leaves `path` out (a folder's exclusion covers everything in it)."""
    parts = path.split("/")
    prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    result = False
    for negated, regex in rules:
        if any(regex.match(p) for p in prefixes):
            result = not negated
    return result


def copy_context(target: Path) -> list[str]:
    """Copy the build context as `docker build .` would send it; returns the copied paths."""
    rules, copied = ignore_rules(), []
    for folder, dirs, files in os.walk(ROOT):
        rel = Path(folder).relative_to(ROOT).as_posix()
        rel = "" if rel == "." else rel + "/"
        dirs[:] = [d for d in dirs if not ignored(rel + d, rules)]
        for name in files:
            if not ignored(rel + name, rules):
                (target / rel).mkdir(parents=True, exist_ok=True)
                shutil.copy2(Path(folder) / name, target / rel / name)
                copied.append(rel + name)
    return copied


def test_dockerignore_keeps_runtime_files_and_leaves_out_development_files_state_and_secrets():
    rules = ignore_rules()
    packages = sorted(p.parent.name for p in ROOT.glob("*/__init__.py") if p.parent.name not in ("tests", "bench"))
    for path in [*RUNTIME, *packages, "core/admin.py", "rustore/emulator/core.py"]:
        assert not ignored(path, rules), path
    for path in ("tests", "tests/conftest.py", "bench/points.py", ".venv/bin/python", ".git/HEAD", "requirements-dev.txt",
                 ".env", ".env.production", "core/__pycache__/admin.cpython-311.pyc", "backups/2026-11-26T030000Z/a.gz",
                 "artifacts/x", ".ci/run", "deploy/nginx.conf", "secrets/rustore.pem", ".mypy_cache/x"):
        assert ignored(path, rules), path


def test_image_install_step_in_a_clean_virtualenv_then_the_app_imports_and_refuses_unsafe_settings(tmp_path):
    """The Dockerfile's pip step run as plain commands in a fresh venv (slow: ~25 s of pip from the local mirror)."""
    app, venv = tmp_path / "app", tmp_path / "venv"
    copied = copy_context(app)
    assert "server.py" in copied and not [p for p in copied if p.startswith(("tests/", ".venv/", "bench/"))]
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    image_env = dict(re.findall(r"(\w+)=(\S+)", " ".join(args for op, args in dockerfile() if op == "ENV")))
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    env |= image_env | {"PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}", "VIRTUAL_ENV": str(venv)}
    for line in pip_lines():
        done = subprocess.run(line, shell=True, cwd=app, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    python = str(venv / "bin" / "python")

    def run(*args: str, **extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([python, *args], cwd=app, env=env | extra, capture_output=True, text=True, timeout=120)

    imported = run("-c", "import server, pymongo, motor; print(server.build_parser().prog)")
    assert imported.returncode == 0 and imported.stdout.strip() == "server.py", imported.stderr
    assert run("-c", "import pytest").returncode == 1  # no dev dependencies in the image
    refused = run("server.py")  # APP_ENV=production comes from the image; nothing else is configured
    assert refused.returncode == 2 and "MONGO_URL" in refused.stderr and "RuStore is not configured" in refused.stderr
    assert run("-m", "core.healthcheck", "/api/health", PORT=str(_free_port())).returncode == 1
