"""Hand-made money-path bugs from the test audit: each must fail at least two tests.

    python -m bench.handmade                      # every bug (a few minutes)
    python -m bench.handmade --only gcm-tag-not-checked

Each bug is one textual change to one module, applied in a scratch copy of the repository (as
`bench.mutation` does); the module's tests then run in full (no `-x`) and every failing test is
listed. A bug failing fewer than MIN_KILLERS tests is reported as too weakly guarded (exit code 1).
`tests/bench/test_handmade.py` keeps every bug applicable to today's code.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.mutation import _copy_tree

MIN_KILLERS = 2


@dataclass(frozen=True)
class Bug:
    """One hand-made bug: replace `old` (exactly once) with `new` in `module`; `tests` should notice."""

    name: str
    module: str
    old: str
    new: str
    tests: tuple[str, ...]
    why: str


BUGS = (
    Bug("ledger-idempotency-filter-removed", "documents/wallet/apply.py",
        '{"_id": user_id, "points.recent.k": {"$ne": khash},\n'
        '             "points.outbox.idempotency_key": {"$ne": key}, **attempt.guard},',
        '{"_id": user_id, **attempt.guard},',
        ("tests/documents/test_ledger_idempotency.py", "tests/documents/test_ledger_interleaving.py",
         "tests/documents/test_ledger_concurrency.py", "tests/handlers/test_points.py", "tests/handlers/test_payments.py"),
        "the apply no longer refuses a key it already applied: a retried or racing credit/debit lands twice"),
    Bug("gcm-tag-not-checked", "rustore/notifications.py",
        "return aes.decrypt(iv, sealed, None), by_sandbox",
        "from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes\n"
        "                opened = Cipher(algorithms.AES(aes._key), modes.GCM(iv, sealed[-16:])).decryptor()\n"
        "                return opened.update(sealed[:-16]), by_sandbox  # the tag is never verified",
        ("tests/rustore/test_notifications.py", "tests/handlers/test_webhooks.py"),
        "a notification whose GCM tag was tampered with is accepted"),
    Bug("stale-answer-undoes-a-final-state", "documents/purchases/payments.py",
        'target = doc["state"]  # a stale answer: keep what we know, but still finish its effects below',
        "pass",
        ("tests/documents/test_purchases.py", "tests/handlers/test_purchase_refunds.py", "tests/handlers/test_payments.py"),
        "a stale CONFIRMED answer after a refund grants again (credit then clawback, credited_now=True)"),
    Bug("first-claim-owns-a-purchase", "documents/billing/ownership.py",
        "owner = owner or bound_to",
        "owner = owner or bound_to or (claim.user_id if claim is not None else None)",
        ("tests/handlers/test_purchase_evidence.py", "tests/documents/test_purchases.py", "tests/handlers/test_payments.py"),
        "whoever presents an invoice first owns it, with no evidence from RuStore"),
    Bug("legacy-token-proves-possession", "documents/subscriptions/apply.py",
        "                             product_id=sub.product_id)",
        "                             product_id=sub.product_id, reported_purchase_ids=frozenset({key}))",
        ("tests/handlers/test_subscriptions.py",),
        "a guessable BillingClient token binds the subscription to whoever presents it"),
)


def apply_bug(source: str, bug: Bug) -> str:
    """The module's source with the bug in it; ValueError when the code it changes is gone."""
    if source.count(bug.old) != 1:
        raise ValueError(f"{bug.name}: the code it changes is not in {bug.module} exactly once")
    return source.replace(bug.old, bug.new)


def failing_tests(work: Path, tests: tuple[str, ...], timeout: float = 1200) -> list[str]:
    """Run the tests in the scratch copy without -x; the node ids that failed (or ['timeout'])."""
    try:
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rf", "-p", "no:randomly", "-p", "no:cacheprovider",
                               "--no-header", *tests], cwd=work, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return ["timeout"]
    return sorted(set(re.findall(r"^(?:FAILED|ERROR) (\S+)", done.stdout, re.M)))


def main(argv: list[str] | None = None) -> int:
    """Apply each bug in a scratch copy, list the tests that fail; exit 1 if one fails fewer than MIN_KILLERS."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", help="run only these bugs (by name)")
    args = parser.parse_args(argv)
    weak = 0
    with tempfile.TemporaryDirectory(prefix="handmade-") as scratch:
        work = Path(scratch)
        _copy_tree(work)
        for bug in BUGS:
            if args.only and bug.name not in args.only:
                continue
            path = work / bug.module
            original = path.read_text()
            path.write_text(apply_bug(original, bug))
            started = time.monotonic()
            try:
                killers = failing_tests(work, bug.tests)
            finally:
                path.write_text(original)
            weak += len(killers) < MIN_KILLERS
            print(f"{bug.name}: {len(killers)} failing tests in {time.monotonic() - started:.0f} s ({bug.why})")
            for test in killers:
                print(f"    {test}")
    return 1 if weak else 0


if __name__ == "__main__":
    raise SystemExit(main())
