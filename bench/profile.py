"""Summarise a py-spy raw profile (collapsed stacks) of our server: where its CPU went, by package.

Run: `python -m bench.profile artifacts/pyspy-50.txt` (written by `python -m bench.load --profile-rate 50`).
A sample counts for mongomock when any frame of its stack is in mongomock or mongomock_motor
(inclusive time: everything the store does, whoever asked); the rest is split by the stack's
innermost frame of interest (bcrypt is native code, so its samples end in the CPU pool's thread
frame). Prints the shares and the top self-time frames.
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]+?)(?::\d+)?\)$")
STORE = ("mongomock/", "mongomock_motor/")
OURS = ("handlers/", "documents/", "core/", "rustore/", "generation/", "server.py")
GROUPS = (("CPU pool thread (bcrypt)", ("bcrypt/", "concurrent/futures/thread.py")), ("our code", OURS),
          ("tornado", ("tornado/",)), ("redis client", ("redis/",)),
          ("aiohttp (RuStore calls)", ("aiohttp/",)), ("logging and metrics", ("loguru/", "prometheus_client/")),
          ("asyncio", ("asyncio/",)))


def _file(frame: str) -> tuple[str, str]:
    match = FRAME.match(frame)
    if not match:
        return frame, ""
    return match["func"], match["file"].split("site-packages/")[-1].split("/work/main/")[-1]


def summarize_profile(path: Path, top: int = 12) -> dict[str, Any]:
    """Shares of samples per group, the frames with the most self samples, and which of our functions the store time serves."""
    groups: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    callers: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n, frames = int(count), [_file(f) for f in stack.split(";")]
        total += n
        func, file = frames[-1]
        leaves[f"{func} ({file})"] += n
        if any(f.startswith(STORE) for _, f in frames):
            groups["mongomock (the embedded store)"] += n
            ours = [f"{fn} ({f})" for fn, f in frames if f.startswith(OURS)]
            callers[ours[-1] if ours else "?"] += n
            continue
        for _fn, f in reversed(frames):
            name = next((g for g, marks in GROUPS if f.startswith(marks)), None)
            if name:
                groups[name] += n
                break
        else:
            groups["other (interpreter, stdlib)"] += n
    if not total:
        return {"samples": 0}

    def shares(counter: Counter[str], k: int) -> list[tuple[str, float]]:
        return [(name, round(n / total, 3)) for name, n in counter.most_common(k)]
    return {"samples": total, "share": dict(shares(groups, len(groups))), "top_self": shares(leaves, top),
            "store_time_by_our_caller": shares(callers, 8)}


def main() -> None:
    """`python -m bench.profile PATH`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path)
    print(json.dumps(summarize_profile(parser.parse_args().path), indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
