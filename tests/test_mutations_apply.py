"""The planted bugs of tests/tools/mutations.py still apply to the code (each text to mutate occurs
exactly once), so that the mutation run cannot silently stop planting one when the code moves."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("dahyf_mutations", REPO / "tests" / "tools" / "mutations.py")
mutations = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = mutations      # its dataclasses look their module up there
_spec.loader.exec_module(mutations)


@pytest.mark.parametrize("mutation", mutations.MUTATIONS, ids=lambda m: m.name)
def test_each_planted_bug_still_applies(mutation):
    text = (REPO / mutation.path).read_text(encoding="utf-8")
    for old, _ in mutation.edits:
        assert text.count(old) == 1, f"{mutation.name}: {mutation.path} holds the text to mutate {text.count(old)} times"
    assert all((REPO / t.split("::")[0]).exists() for t in mutation.tests)
