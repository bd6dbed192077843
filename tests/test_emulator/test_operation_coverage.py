"""Every BatchClient operation of azure-batch 15 answers for real or with a Batch-shaped 501; the doc table is fresh."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from batch_emulator.server import EmulatorConfig, ThreadedEmulator


def load_coverage() -> ModuleType:
    """``operation_coverage.py`` next to this file (test modules are not importable as a package here)."""
    path = Path(__file__).with_name("operation_coverage.py")
    spec = importlib.util.spec_from_file_location("operation_coverage", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_every_operation_answers_and_the_table_in_docs_is_current() -> None:
    coverage = load_coverage()
    with ThreadedEmulator(EmulatorConfig(port=0, allocation_seconds=0.05)) as emulator:
        outcomes = coverage.measure(emulator.url, emulator.account_name, emulator.account_key)
    assert [outcome.operation for outcome in outcomes] == coverage.operation_names()
    for outcome in outcomes:
        assert outcome.implemented or outcome.detail, f"{outcome.operation}: a 501 must say what is missing"
    document = coverage.DOC.read_text("utf-8")
    expected = coverage.replace_section(document, coverage.table(outcomes))
    assert document == expected, (
        "docs/emulator.md's operation table is stale: run `.venv/bin/python -m tests.test_emulator.operation_coverage`"
    )
