"""scripts/audit.py judges pip-audit's report: vulnerable or partly audited fails; unreachable is said loudly."""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "audit.py"


@pytest.fixture
def audit():
    spec = importlib.util.spec_from_file_location("keel_audit", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _report(monkeypatch, audit, *dependencies):
    def run(command, **kwargs):
        assert "--no-deps" in command and str(audit.LOCK) in command
        return subprocess.CompletedProcess(command, 0, stdout=json.dumps({"dependencies": list(dependencies)}))

    monkeypatch.setattr(audit.subprocess, "run", run)


CLEAN = {"name": "django", "version": "5.2.19", "vulns": []}
VULNERABLE = {
    "name": "requests",
    "version": "2.0.0",
    "vulns": [{"id": "PYSEC-2099-1", "fix_versions": ["2.32.0"], "description": "..."}],
}
SKIPPED = {"name": "stripe", "skip_reason": "Dependency not found on PyPI and could not be audited: stripe (16.1.0)"}


def test_a_clean_audit_passes(monkeypatch, audit, capsys):
    _report(monkeypatch, audit, CLEAN, CLEAN)
    assert audit.main() == 0
    assert "2 locked packages audited, 0 with known vulnerabilities" in capsys.readouterr().out


def test_a_known_vulnerability_fails_and_names_the_fix(monkeypatch, audit, capsys):
    _report(monkeypatch, audit, CLEAN, VULNERABLE)
    assert audit.main() == 1
    assert "VULNERABLE requests 2.0.0: PYSEC-2099-1 (fixed in 2.32.0)" in capsys.readouterr().out


def test_a_partial_audit_fails(monkeypatch, audit, capsys):
    _report(monkeypatch, audit, CLEAN, SKIPPED)
    assert audit.main() == 1
    assert "NOT AUDITED stripe" in capsys.readouterr().err


def test_an_unreachable_service_is_reported_and_fails_only_when_required(monkeypatch, audit, capsys):
    _report(monkeypatch, audit, SKIPPED, SKIPPED)
    assert audit.main() == 0
    assert "NOT AUDITED: the vulnerability service answered for none of the 2 packages" in capsys.readouterr().err
    monkeypatch.setenv("AUDIT_REQUIRED", "1")
    assert audit.main() == 1


def test_no_report_fails(monkeypatch, audit):
    monkeypatch.setattr(
        audit.subprocess, "run", lambda command, **kw: subprocess.CompletedProcess(command, 2, stdout="", stderr="boom")
    )
    assert audit.main() == 1
