"""Replay the CI fuzz run locally: `python -m tests.fuzz.run [--seed N] [--max-examples N] [--serve]`.

Starts the same server as tests/fuzz/test_schemathesis.py (RuStore emulator, fake Google and VK ID, a funded
user; Redis at TEST_REDIS_URL) and runs the same `st run` command with its output on the terminal. `--serve`
only starts the server and prints the command and environment, to run `st` by hand (e.g. one operation with
`--include-path`).
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import sys

from loguru import logger

from tests.fuzz.harness import MAX_EXAMPLES, SEED, WALL_CLOCK_S, command, environment, fuzz_target, run_schemathesis


async def main(seed: int, max_examples: int, serve: bool) -> int:
    """Run (or just serve) one fuzz session; the exit code is Schemathesis'."""
    async with fuzz_target() as target:
        cmd = command(target.base_url, seed, max_examples)
        env = environment(target)
        print(f"FUZZ_EMAIL={env['FUZZ_EMAIL']} FUZZ_PASSWORD={shlex.quote(env['FUZZ_PASSWORD'])} "
              + " ".join(shlex.quote(part) for part in cmd), file=sys.stderr, flush=True)
        if serve:
            print("serving; Ctrl-C stops", file=sys.stderr, flush=True)
            await asyncio.Event().wait()
        code, _ = await run_schemathesis(target, seed, max_examples, timeout_s=WALL_CLOCK_S * 10, stream=True)
        return code


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=SEED, help=f"Hypothesis seed (CI uses {SEED})")
    parser.add_argument("--max-examples", type=int, default=MAX_EXAMPLES, help="test cases per operation and phase")
    parser.add_argument("--serve", action="store_true", help="start the server and print the command, run nothing")
    args = parser.parse_args()
    logger.remove()
    logger.add(sys.stderr, level="WARNING")  # the access log of thousands of requests would bury the report
    try:
        sys.exit(asyncio.run(main(args.seed, args.max_examples, args.serve)))
    except KeyboardInterrupt:
        sys.exit(130)
