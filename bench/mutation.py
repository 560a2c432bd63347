"""Mutation testing of the money path: mutate one module at a time, run only the tests that cover it.

    python -m bench.mutation                       # every module in MODULES (tens of minutes)
    python -m bench.mutation documents/wallet/apply.py --limit 20 --out mutation.json

Each mutant is one small change to the module's syntax tree (a comparison or arithmetic operator
swapped, `and`/`or` exchanged, a `not` dropped, a boolean or integer constant changed, a returned
value replaced by None, a `raise` or an awaited call removed).  The repository's tracked files are
copied to a scratch directory once; each mutant is written there and the module's tests run against
it (`pytest -x`, killed = the tests fail or time out).  Docstrings, logging calls and lines marked
`# pragma: no mutate` are left alone.  Mutants listed in EQUIVALENT (same behaviour as the original,
with the reason) are reported but not counted.  Why not mutmut 3: its trampolines need the package
importable from a `mutants/` copy and run pytest in-process, which our fixtures (servers, loopback
emulator, the index check) do not survive; this tool changes nothing but the file under test.
"""

from __future__ import annotations

import argparse
import ast
import copy
import difflib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Money-path module -> the tests that cover it (run with -x, so a kill is usually found fast).
MODULES: dict[str, list[str]] = {
    "documents/wallet/apply.py": ["tests/documents/test_ledger_idempotency.py", "tests/documents/test_ledger_interleaving.py",
                                  "tests/documents/test_ledger_concurrency.py", "tests/documents/test_ledger_crash.py",
                                  "tests/documents/test_ledger_clawback.py"],
    "documents/wallet/outbox.py": ["tests/documents/test_ledger_crash.py", "tests/documents/test_ledger_interleaving.py",
                                   "tests/documents/test_ledger_unwritable.py", "tests/documents/test_ledger_idempotency.py",
                                   "tests/documents/test_events.py"],
    "documents/wallet/ledger.py": ["tests/documents/test_ledger_idempotency.py", "tests/documents/test_ledger_clawback.py",
                            "tests/documents/test_ledger_history.py", "tests/documents/test_ledger_concurrency.py",
                            "tests/documents/test_ledger_crash.py", "tests/documents/test_ledger_audit.py",
                            "tests/documents/test_ledger_unwritable.py"],
    "documents/wallet/audit.py": ["tests/documents/test_ledger_audit.py", "tests/documents/test_ledger_crash.py"],
    "documents/purchases/effects.py": ["tests/documents/test_purchases.py", "tests/handlers/test_purchase_refunds.py"],
    "documents/purchases/payments.py": ["tests/documents/test_purchases.py", "tests/handlers/test_payments.py",
                               "tests/handlers/test_purchase_evidence.py"],
    "documents/subscriptions/refunds.py": ["tests/documents/test_subscription_refunds.py",
                                          "tests/handlers/test_subscription_refunds.py"],
    "documents/subscriptions/store.py": ["tests/documents/test_subscriptions.py", "tests/handlers/test_subscriptions.py"],
    "documents/subscriptions/apply.py": ["tests/documents/test_subscriptions.py",
                                         "tests/documents/test_subscription_refunds.py", "tests/handlers/test_subscriptions.py"],
    "documents/accounts/sessions.py": ["tests/documents/test_sessions.py", "tests/handlers/test_auth.py",
                              "tests/handlers/test_user.py", "tests/handlers/test_auth_devices.py"],
    "core/tokens.py": ["tests/security/test_tokens.py", "tests/handlers/test_auth.py", "tests/handlers/test_auth_devices.py",
                       "tests/handlers/test_generation_image.py"],
    "rustore/notifications.py": ["tests/rustore/test_notifications.py"],
    "documents/billing/ownership.py": ["tests/documents/test_billing_ownership.py", "tests/documents/test_purchases.py",
                                       "tests/handlers/test_purchase_evidence.py",
                                       "tests/handlers/test_payments.py", "tests/documents/test_subscriptions.py",
                                       "tests/handlers/test_subscriptions.py"],
    "documents/billing/shortfalls.py": ["tests/documents/test_purchases.py", "tests/handlers/test_purchase_refunds.py",
                                        "tests/documents/test_subscription_refunds.py"],
    "documents/billing/records.py": ["tests/documents/test_purchases.py", "tests/handlers/test_payments.py",
                                     "tests/documents/test_subscriptions.py", "tests/handlers/test_subscriptions.py",
                                     "tests/handlers/test_webhooks_processing.py",
                                     "tests/handlers/test_webhook_processing_paths.py"],
    "documents/webhooks/processing.py": ["tests/handlers/test_webhooks_processing.py", "tests/jobs/test_webhook_retry.py",
                                        "tests/handlers/test_webhook_processing_paths.py"],
}

# (module, mutation without its line number, the mutated line's source) -> why the mutant cannot change
# behaviour; reported, not counted.  Keyed by the line's text so edits elsewhere in the module keep it.
EQUIVALENT: dict[tuple[str, str, str], str] = {
    ("documents/subscriptions/apply.py", "const:1->2#1",
     'doc = await bind_owner(db, COLLECTION, doc, owner, claim, also={"$inc": {"revision": 1}},'):
        "revisions are only compared (sums against the user's basis, equality with a re-read): steps of 2 order the same",
    ("documents/purchases/payments.py", "drop-key:$slice#1",
     'return {"$push": {"history": {"$each": [{"at": now, "state": state, "rustore_status": status, "source": source}],'):
        "history grows only when the state moves forward (pending, paid, confirmed, a final state): at most four "
        "entries, far below HISTORY_KEPT, so the bound never cuts anything",
    ("documents/wallet/apply.py", "const:False->True#1", "return Outcome(None, replayed=False, problem=USER_NOT_FOUND)"):
        "ledger._post raises UserNotFound on the problem before it reads `replayed`",
    ("documents/wallet/apply.py", "const:False->True#1", "return Outcome(None, replayed=False, problem=CONTENTION)"):
        "ledger._post raises LedgerError when the entry is None before it reads `replayed`",
    ("documents/wallet/outbox.py", "const:0->1#1", 'balance = points.get("balance", 0)'):
        "snapshots always hold points.balance: new_wallet writes it and every apply $inc's it",
    ("documents/wallet/outbox.py", "const:0->1#1", 'seq = points.get("seq", 0)'):
        "snapshots always hold points.seq: new_wallet writes it and every apply $inc's it",
    ("documents/wallet/outbox.py", "const:100->101#1", "now: datetime | None = None, batch: int = 100) -> RepairReport:"):
        "the default page size only changes how many pages a repair reads, not what it repairs",
    ("documents/wallet/outbox.py", "const:100->101#1", "now: datetime | None = None, batch: int = 100) -> int:"):
        "the default page size only changes how many pages a repair reads, not what it repairs",
    ("documents/wallet/outbox.py", "return-None#1", "if not settled:\nreturn 0"):
        "unreachable: apply_once always passes its own entry and flush_user only a non-empty outbox",
    ("documents/wallet/outbox.py", "const:0->1#1", "if not settled:\nreturn 0"):
        "unreachable: apply_once always passes its own entry and flush_user only a non-empty outbox",
    ("documents/wallet/outbox.py", "drop-key:points.pending_since#1", '{"_id": user_id, "points.outbox": {"$size": 0},'):
        "$unset of a field the document lacks changes nothing; the condition only saves a write",
    ("documents/purchases/payments.py", "return-None#1",
     "await store_claim(db, COLLECTION, doc[\"_id\"], claim, now)\nreturn doc"):
        "record_unverified's only caller (purchase_sync) does not use the returned document",
    ("documents/purchases/payments.py", "compare0:Lt->LtE#1", 'if RANK[target] < RANK[doc["state"]]:'):
        "at equal rank _advance moves nothing either way, and the final states of equal rank (failed, reversed,"
        " refunded) take the same revocation path or none",
    ("documents/purchases/payments.py", "binop:Add->Sub#1", 'changes["next_check_at"] = now + timedelta(minutes=1)'):
        "_advance to `pending` never matches (no state ranks below pending), so these changes are never written",
    ("documents/purchases/payments.py", "const:1->2#1", 'changes["next_check_at"] = now + timedelta(minutes=1)'):
        "_advance to `pending` never matches (no state ranks below pending), so these changes are never written",
    ("documents/purchases/effects.py", "const:False->True#1",
     "found, balance = (False, None) if doc.get(\"user_id\") is None else await revoke(db, doc, policy, now)"):
        "without an owner `found` is never read: the recheck branch below also requires an owner",
    ("documents/purchases/effects.py", "return-None#1", "if scheduled.modified_count:\nreturn balance"):
        "only reached when revoke() found nothing, and then its balance is None already",
    **{("core/tokens.py", kind, "def __init__(self, secret: str, ttl_s: int, issuer: str = \"rustore-backend\", "
        "device_ttl_s: int = 365 * 86400) -> None:"):
       "the default device_ttl_s is never used: the only TokenService (core/context.py) is built with"
       " settings.device_token_ttl_s"
       for kind in ("binop:Mult->FloorDiv#1", "const:365->366#1", "const:86400->86401#1")},
    ("core/tokens.py", "compare0:Gt->GtE#1", "if len(self._verified) > VERIFIED_CACHE_SIZE:"):
        "the verified-token cache changes no answer (a token evicted from it is decoded again, with the same checks),"
        " only how often PyJWT runs; holding 9,999 instead of 10,000 is the same behaviour",
    ("core/tokens.py", "const:False->True#1", "self._verified.popitem(last=False)"):
        "the verified-token cache changes no answer (a token evicted from it is decoded again, with the same checks);"
        " evicting the newest instead of the oldest only changes how often PyJWT runs",
    ("core/tokens.py", "const:12->13#1", '"jti": secrets.token_hex(12),'):
        "jti is never read (no code looks tokens up by it): it only makes two tokens of one second differ, at any length",
    ("core/tokens.py", "const:12->13#1", '"jti": secrets.token_hex(12), "iss": self._issuer, "typ": "device"}'):
        "jti is never read (no code looks tokens up by it): it only makes two tokens of one second differ, at any length",
    ("core/tokens.py", "boolop:Or#1", 'if claims.get("typ") != "device" or not isinstance(claims["sub"], str):'):
        "only tokens signed with the device key get here, and that key signs nothing but issue_device's tokens"
        " (typ \"device\", a str sub; PyJWT 2.10+ refuses a non-string sub itself); whoever holds the key could sign"
        " typ \"device\" anyway, so no token reaches the weakened condition with another outcome",
    ("documents/wallet/audit.py", "const:200->201#1", "now: datetime | None = None, batch: int = 200) -> LedgerAudit:"):
        "the default page size only changes how many pages the audit reads, not what it finds",
    ("documents/accounts/sessions.py", "const:12->13#1", '"_id": "s_" + secrets.token_hex(12),'):
        "a session id only has to be unique (ending or listing a session checks its owner, so guessing an id grants"
        " nothing); 13 random bytes instead of 12 change nothing but the id's length",
    ("documents/accounts/sessions.py", "drop-key:_id#1", '{"_id": current["_id"], "refresh_hash": superseded, **window},'):
        "refresh_hash is the SHA-256 of a fresh 256-bit token, held by one session only: the filter matches the same"
        " document with or without its _id",
    ("documents/subscriptions/apply.py", "return-None#1", 'return await db[COLLECTION].find_one({"_id": doc["_id"]}) or doc'):
        "record_claim's only caller (subscription_sync._verify) does not use the returned document",
    ("documents/subscriptions/apply.py", "boolop:Or#1", 'return await db[COLLECTION].find_one({"_id": doc["_id"]}) or doc'):
        "record_claim's only caller (subscription_sync._verify) does not use the returned document",
    ("documents/subscriptions/apply.py", "const:0->1#2",
     '"end_date": None, "acknowledged": False, "ack_attempts": 0, "observed_at": None, "revision": 0,'):
        "revisions are only compared (sums against the user's basis, equality with a re-read): a start at 1 orders the same",
    ("documents/subscriptions/apply.py", "const:1->2#1", 'update: dict[str, Any] = {"$set": fields, "$inc": {"revision": 1}}'):
        "revisions are only compared (sums against the user's basis, equality with a re-read): steps of 2 order the same",
    ("documents/subscriptions/refunds.py", "return-None#1", 'return period["key"]'):
        "link_charge's only caller (apply_charge) does not use the returned key",
    ("documents/subscriptions/refunds.py", "drop-key:_id#1",
     'return await db[COLLECTION].find_one(query, {"_id": 1, "purchase_id": 1})'):
        "a projection returns `_id` unless it is excluded: dropping it from the projection returns the same fields",
    ("documents/subscriptions/refunds.py", "const:True->False#1",
     "result = wallet.LedgerResult(exc.entry, exc.entry.balance_after, True)"):
        "unreachable: a period's clawback always requests its grant's amount and corrects its grant's entry, the only"
        " things ledger.clawback compares on a replay, so it never raises IdempotencyKeyMismatch",
    ("documents/subscriptions/refunds.py", "boolop:And#1", 'if pending and doc.get("user_id"):'):
        "an unowned subscription has no granted period (grants need an owner; owners are never unbound), so its pending"
        " refunds settle nothing either way; with nothing pending the loop is empty and the flush only writes out"
        " entries the next ledger call would",
    ("documents/webhooks/processing.py", "return-None#1",
     'return False  # RuStore just told us about it; "unknown invoice" is more likely lag than forgery'):
        "None is falsy like False: the only caller tests `if _is_permanent(exc)`",
    ("documents/webhooks/processing.py", "const:0->1#2",
     '"owned": doc.get("user_id") is not None, "points_granted": int(getattr(outcome, "points_granted", 0) or 0),'):
        "getattr's default is never used: every SubscriptionOutcome has points_granted",
    ("documents/webhooks/processing.py", "const:0->1#2",
     '"points_clawed_back": int(getattr(outcome, "points_clawed_back", 0) or 0)}'):
        "getattr's default is never used: every SubscriptionOutcome has points_clawed_back",
    ("documents/webhooks/processing.py", "drop-raise#1",
     'raise MalformedEvent(f"{event[\'type\']} notifications are not processed")'):
        "unreachable: only INVOICE_STATUS and SUBSCRIPTION_EVENT notifications are stored to be processed"
        " (webhook_events.new_event stores other types as ignored), and SUBSCRIPTION_EVENT returned above",
    ("documents/subscriptions/store.py", "const:2->3#1",
     'return (0 if live else 1 if status == "PAUSED" else 2), -(utc(end).timestamp() if end else 0.0)'):
        "ranks are only compared: 0 < 1 < 3 orders live, paused and ended the same as 0 < 1 < 2",
    ("documents/subscriptions/store.py", "return-None#1",
     'if sum(int(d.get("revision") or 0) for d in await _user_documents(db, user_id)) == basis:\n'
     "return summary"):
        "project_user's only caller (subscription_apply) does not use the returned summary",
    ("documents/subscriptions/store.py", "return-None#1",
     'logger.warning("subscription projection kept racing; the next check rewrites it", user_id=str(user_id))\n'
     "return summary"):
        "project_user's only caller (subscription_apply) does not use the returned summary",
    ("documents/subscriptions/store.py", "const:0->1#1", 'basis = sum(int(d.get("revision") or 0) for d in docs)'):
        "a user's documents always have a revision of at least 1 (binding bumps it), so the default is never used",
    ("documents/subscriptions/store.py", "const:0->1#1",
     'if sum(int(d.get("revision") or 0) for d in await _user_documents(db, user_id)) == basis:'):
        "a user's documents always have a revision of at least 1 (binding bumps it), so the default is never used",
    ("documents/subscriptions/store.py", "boolop:Or#1",
     'if sum(int(d.get("revision") or 0) for d in await _user_documents(db, user_id)) == basis:'):
        "the re-read sum then never equals the basis, so every projection takes all PROJECTION_ROUNDS rounds; each"
        " recomputes from fresh documents and writes under the same basis rule, so the copy left is the same",
}


def equivalence(module: str, mutant: Mutant) -> str | None:
    """The recorded reason this mutant is equivalent, if it is (keyed by its line, or previous + its line)."""
    kind = mutant.id.split(":", 1)[1]
    return EQUIVALENT.get((module, kind, mutant.source)) or EQUIVALENT.get((module, kind, mutant.context))

SWAP_COMPARE = {ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE,
                ast.GtE: ast.Gt, ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is}
SWAP_BINOP = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.FloorDiv, ast.FloorDiv: ast.Mult, ast.Mod: ast.Mult}
LOG_NAMES = {"log", "logger", "logging", "warnings"}


@dataclass
class Mutant:
    """One mutation: a stable id (line, kind, n-th of that kind on the line), its line and description."""

    id: str
    line: int
    kind: str
    source: str
    context: str = ""  # the previous line and this one, to tell identical lines apart
    diff: str = ""
    outcome: str = ""  # killed, survived, timeout, equivalent
    seconds: float = 0.0


def _skipped_lines(source: str) -> set[int]:
    return {i for i, text in enumerate(source.splitlines(), 1) if "pragma: no mutate" in text}


def _is_docstring(node: ast.AST, parent: ast.AST | None) -> bool:
    return (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
            and parent is not None and getattr(parent, "body", [None])[0] is node)


def _is_log_call(node: ast.AST) -> bool:
    call = node.value if isinstance(node, ast.Expr) else node
    if isinstance(call, ast.Await):
        call = call.value
    if not isinstance(call, ast.Call):
        return False
    func = call.func
    while isinstance(func, ast.Attribute):
        func = func.value
    return isinstance(func, ast.Name) and func.id in LOG_NAMES


def _in_projection(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """True for the 1 of a MongoDB projection ({"_id": 1} passed after the filter): any truthy value is the same."""
    d = parents.get(node)
    return (isinstance(d, ast.Dict) and all(isinstance(v, ast.Constant) and v.value == 1 for v in d.values)
            and isinstance(parents.get(d), ast.Call) and d not in getattr(parents.get(d), "args", [])[:1]) or (
        isinstance(d, ast.Dict) and isinstance(parents.get(d), ast.keyword)
        and parents[d].arg == "projection")  # type: ignore[attr-defined]


def _sites(tree: ast.Module) -> Iterator[tuple[ast.AST, str, object]]:
    """Yield (node, kind, replacement-spec) for every mutation site inside functions."""
    parents: dict[ast.AST, ast.AST] = {}
    for parent in ast.walk(tree):
        for child in ast.iter_child_nodes(parent):
            parents[child] = parent

    def inside_function(node: ast.AST) -> bool:
        p = parents.get(node)
        while p is not None:
            if isinstance(p, ast.FunctionDef | ast.AsyncFunctionDef):
                return True
            p = parents.get(p)
        return False

    def in_log_call(node: ast.AST) -> bool:
        p: ast.AST | None = node
        while p is not None:
            if isinstance(p, ast.Call) and _is_log_call(p):
                return True
            p = parents.get(p)
        return False

    for node in ast.walk(tree):
        if not inside_function(node) or in_log_call(node) or _is_docstring(node, parents.get(node)):
            continue
        if isinstance(node, ast.Compare):
            for i, op in enumerate(node.ops):
                if type(op) in SWAP_COMPARE:
                    yield node, f"compare{i}:{type(op).__name__}->{SWAP_COMPARE[type(op)].__name__}", ("compare", i)
        elif isinstance(node, ast.BinOp) and type(node.op) in SWAP_BINOP:
            yield node, f"binop:{type(node.op).__name__}->{SWAP_BINOP[type(node.op)].__name__}", ("binop",)
        elif isinstance(node, ast.BoolOp):
            yield node, f"boolop:{type(node.op).__name__}", ("boolop",)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            yield node, "drop-not", ("not",)
        elif isinstance(node, ast.Constant) and type(node.value) is bool:
            yield node, f"const:{node.value}->{not node.value}", ("bool",)
        elif isinstance(node, ast.Constant) and type(node.value) is int and not _in_projection(node, parents):
            yield node, f"const:{node.value}->{node.value + 1}", ("int",)
        elif isinstance(node, ast.Return) and node.value is not None and not (
                isinstance(node.value, ast.Constant) and node.value.value is None):
            yield node, "return-None", ("return",)
        elif isinstance(node, ast.Raise):
            yield node, "drop-raise", ("stmt",)
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Await) and not _is_log_call(node):
            yield node, "drop-await-call", ("stmt",)
        elif isinstance(node, ast.Dict) and len(node.keys) > 1:
            # A MongoDB filter or update (keys like "_id", "points.seq", "$set"): drop one condition or change.
            for i, key in enumerate(node.keys):
                if isinstance(key, ast.Constant) and isinstance(key.value, str) and (
                        key.value.startswith(("$", "_id")) or "." in key.value):
                    yield node, f"drop-key:{key.value}", ("dropkey", i)


def _apply(node: ast.AST, spec: tuple) -> None:
    kind = spec[0]
    if kind == "compare":
        node.ops[spec[1]] = SWAP_COMPARE[type(node.ops[spec[1]])]()  # type: ignore[attr-defined]
    elif kind == "binop":
        node.op = SWAP_BINOP[type(node.op)]()  # type: ignore[attr-defined]
    elif kind == "boolop":
        node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()  # type: ignore[attr-defined]
    elif kind == "bool":
        node.value = not node.value  # type: ignore[attr-defined]
    elif kind == "int":
        node.value = node.value + 1  # type: ignore[attr-defined]
    elif kind == "dropkey":
        del node.keys[spec[1]], node.values[spec[1]]  # type: ignore[attr-defined]
    elif kind == "return":
        node.value = ast.Constant(None)  # type: ignore[attr-defined]


class _Replace(ast.NodeTransformer):
    def __init__(self, target: ast.AST, spec: tuple) -> None:
        self.target, self.spec = target, spec

    def visit(self, node: ast.AST) -> ast.AST:
        if node is self.target:
            if self.spec[0] == "not":
                return node.operand  # type: ignore[attr-defined]
            if self.spec[0] == "stmt":
                return ast.copy_location(ast.Pass(), node)
            _apply(node, self.spec)
            return node
        return self.generic_visit(node)


def mutants_of(source: str) -> Iterator[tuple[Mutant, str]]:
    """Every mutant of a module's source, with the mutated source (unparsed)."""
    skipped = _skipped_lines(source)
    base_tree = ast.parse(source)
    baseline = ast.unparse(base_tree).splitlines()
    count: dict[tuple[int, str], int] = {}
    for index, (node, kind, spec) in enumerate(list(_sites(base_tree))):
        line = getattr(node, "lineno", 0)
        if line in skipped:
            continue
        n = count[(line, kind)] = count.get((line, kind), 0) + 1
        tree = copy.deepcopy(base_tree)
        target = list(_sites(tree))[index][0]
        mutated = ast.unparse(ast.fix_missing_locations(_Replace(target, spec).visit(tree)))
        diff = "\n".join(line_ for line_ in difflib.unified_diff(baseline, mutated.splitlines(), lineterm="", n=0)
                         if not line_.startswith(("---", "+++", "@@")))
        lines = source.splitlines()
        context = "\n".join(text.strip() for text in lines[max(0, line - 2):line])
        yield Mutant(f"L{line}:{kind}#{n}", line, kind, lines[line - 1].strip(), context, diff), mutated


def _copy_tree(dest: Path) -> None:
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout.split(b"\0")
    for name in filter(None, files):
        src = ROOT / name.decode()
        if src.is_file():
            target = dest / name.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)


def _pytest(work: Path, tests: list[str], timeout: float) -> tuple[bool, float]:
    """Run the tests in the scratch copy; True if they passed."""
    started = time.monotonic()
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    try:
        done = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:randomly", "-p", "no:cacheprovider",
                               "--no-header", *tests], cwd=work, env=env, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return False, time.monotonic() - started
    return done.returncode == 0, time.monotonic() - started


def run_module(module: str, tests: list[str], work: Path, *, limit: int | None = None,
               only: set[str] | None = None, log=print) -> dict:
    """Mutate one module in the scratch copy, run its tests per mutant, restore it; return the report."""
    path = work / module
    original = path.read_text()
    ok, base_s = _pytest(work, tests, timeout=600)
    if not ok:
        raise SystemExit(f"{module}: its tests fail without any mutation ({tests})")
    timeout = max(30.0, base_s * 3)
    results: list[Mutant] = []
    try:
        for mutant, mutated in mutants_of(original):
            if only and mutant.id not in only:
                continue
            if limit is not None and len(results) >= limit:
                break
            if equivalence(module, mutant):
                mutant.outcome = "equivalent"
                results.append(mutant)
                continue
            path.write_text(mutated)
            passed, mutant.seconds = _pytest(work, tests, timeout)
            mutant.outcome = "survived" if passed else ("timeout" if mutant.seconds >= timeout else "killed")
            log(f"{module} {mutant.id:40} {mutant.outcome}")
            results.append(mutant)
    finally:
        path.write_text(original)
    counted = [m for m in results if m.outcome != "equivalent"]
    killed = sum(m.outcome in ("killed", "timeout") for m in counted)
    return {"module": module, "tests": tests, "mutants": len(results), "equivalent": len(results) - len(counted),
            "killed": killed, "survived": len(counted) - killed,
            "score": round(100 * killed / len(counted), 1) if counted else None, "baseline_s": round(base_s, 1),
            "survivors": [asdict(m) for m in counted if m.outcome == "survived"],
            "equivalents": [asdict(m) | {"reason": equivalence(module, m)} for m in results
                            if m.outcome == "equivalent"]}


def main(argv: list[str] | None = None) -> int:
    """Command line: modules (default all of MODULES), --limit, --only ids, --out JSON."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("modules", nargs="*", help="module paths (default: every money-path module)")
    p.add_argument("--limit", type=int, help="at most this many mutants per module (a smoke run)")
    p.add_argument("--only", action="append", help="run only these mutant ids")
    p.add_argument("--out", help="write the JSON report here")
    args = p.parse_args(argv)
    modules = args.modules or list(MODULES)
    unknown = [m for m in modules if m not in MODULES]
    if unknown:
        raise SystemExit(f"no tests mapped for {unknown}; add them to MODULES in bench/mutation.py")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mutation-") as tmp:
        work = Path(tmp)
        _copy_tree(work)
        reports = [run_module(m, MODULES[m], work, limit=args.limit, only=set(args.only or ())) for m in modules]
    summary = {"date": datetime.now(UTC).strftime("%Y-%m-%d"), "seconds": round(time.monotonic() - started),
               "modules": reports}
    for r in reports:
        print(f"{r['module']}: {r['killed']} killed, {r['survived']} survived, {r['equivalent']} equivalent"
              f" -> {r['score']}%")
        for s in r["survivors"]:
            print(f"  survived {s['id']}: {s['source']}\n    " + s["diff"].replace("\n", "\n    "))
    if args.out:
        Path(args.out).write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
