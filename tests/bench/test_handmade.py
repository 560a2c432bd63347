"""The hand-made bugs of bench/handmade.py still apply to today's code (else the tool would test nothing)."""

from __future__ import annotations

import ast

import pytest

from bench.handmade import BUGS, apply_bug
from bench.mutation import ROOT


@pytest.mark.parametrize("bug", BUGS, ids=[b.name for b in BUGS])
def test_each_hand_made_bug_still_applies_and_still_compiles(bug):
    source = (ROOT / bug.module).read_text()
    broken = apply_bug(source, bug)
    assert broken != source
    ast.parse(broken)
    assert all((ROOT / test).is_file() for test in bug.tests)


def test_a_bug_whose_code_is_gone_is_refused_not_silently_skipped():
    bug = BUGS[0]
    with pytest.raises(ValueError, match="not in"):
        apply_bug("nothing of the ledger here", bug)
