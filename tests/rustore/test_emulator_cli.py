"""`python -m rustore.emulator` runs standalone, prints what a developer needs, and stops on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_emulator_runs_standalone_and_prints_generated_secrets() -> None:
    command = [sys.executable, "-m", "rustore.emulator", "--port", "0", "--app-id", "42", "--package-name",
               "com.demo", "--notification-url", "http://127.0.0.1:9/hook", "--fake-clock"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as process:
        try:
            banner = process.stdout.readline()  # type: ignore[union-attr]
            secrets = [process.stdout.readline(), process.stdout.readline()]  # type: ignore[union-attr]
            url = banner.split(" listening on ")[1].split()[0]
            with urllib.request.urlopen(url + "/_emulator/state", timeout=5) as response:
                state = json.load(response)
        finally:
            process.send_signal(signal.SIGTERM)
            process.communicate(timeout=10)
    assert process.returncode == 0
    assert state["apps"][0]["appId"] == 42 and state["apps"][0]["packageName"] == "com.demo"
    assert "RUSTORE_PRIVATE_KEY=MII" in secrets[0] and "RUSTORE_NOTIFICATION_KEY=" in secrets[1]
