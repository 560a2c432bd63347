"""A few mutants of the notification decoder through the mutation tool (bench/mutation.py), so it does not rot.

The full run is `python -m bench.mutation` (docs/mutation.md); here two chosen mutants run end to end:
dropping the authentication failure must be killed by the decoder's tests, and the report says so.
"""

from __future__ import annotations

import json
from pathlib import Path

from bench.mutation import MODULES, main, mutants_of

MODULE = "rustore/notifications.py"


def ids_where(predicate) -> list[str]:
    """Ids of the matching mutants, in line order."""
    return [m.id for m, _ in sorted(mutants_of(Path(MODULE).read_text()), key=lambda pair: pair[0].line)
            if predicate(m)]


def test_mutants_cover_the_idempotency_filter_and_the_tag_check():
    ledger_ids = [m.id for m, _ in mutants_of(Path("documents/wallet/apply.py").read_text())]
    assert any(i.split(":", 1)[1].startswith("drop-key:points.recent.k") for i in ledger_ids)
    assert ids_where(lambda m: m.kind == "drop-raise" and "NotificationDecryptError" in m.source)
    assert set(MODULES[MODULE]) and all(Path(t).exists() for tests in MODULES.values() for t in tests)


def test_a_smoke_run_kills_the_dropped_authentication_failure(tmp_path, capsys):
    dropped_auth = ids_where(lambda m: m.kind == "drop-raise" and "NotificationDecryptError" in m.source)
    dropped_missing_key = ids_where(lambda m: m.kind == "drop-raise" and "NotificationMissingKeyError" in m.source)
    out = tmp_path / "mutation.json"
    # The GCM failure raised in _decrypt is the last NotificationDecryptError of the module.
    only = [arg for i in (dropped_auth[-1], dropped_missing_key[0]) for arg in ("--only", i)]
    assert main([MODULE, *only, "--out", str(out)]) == 0
    [report] = json.loads(out.read_text())["modules"]
    assert (report["module"], report["mutants"], report["killed"], report["survived"]) == (MODULE, 2, 2, 0)
    assert report["score"] == 100.0 and report["survivors"] == []
    assert f"{MODULE}: 2 killed, 0 survived" in capsys.readouterr().out


def test_every_recorded_equivalent_mutant_still_names_a_line_of_its_module():
    # An entry whose line moved away would silently stop excluding anything (or, worse, match new code).
    from bench.mutation import EQUIVALENT, ROOT

    stale = []
    for module, kind, text in EQUIVALENT:
        lines = {line.strip() for line in (ROOT / module).read_text().splitlines()}
        if module not in MODULES or not all(part in lines for part in text.split("\n")):
            stale.append((module, kind, text))
    assert stale == []
