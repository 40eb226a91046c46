"""Audit the locked dependencies (requirements.lock) for known vulnerabilities with pip-audit.

    .venv/bin/python scripts/audit.py            # what `make audit` and CI run

Exit 1 when any locked package has a known vulnerability, or when only some packages could be looked up (a partial
audit hides the rest). When the vulnerability service cannot be reached at all, no package can be looked up: the
audit says so loudly and exits 0, unless AUDIT_REQUIRED=1, so an offline build still runs its tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.lock"


def main() -> int:
    command = [
        str(Path(sys.executable).parent / "pip-audit"),
        "--requirement",
        str(LOCK),
        "--no-deps",  # the lock already pins every package, dependencies included
        "--disable-pip",
        "--format",
        "json",
        "--progress-spinner",
        "off",
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        print(result.stderr or result.stdout, file=sys.stderr)
        print("audit: pip-audit did not produce a report", file=sys.stderr)
        return 1
    packages = report["dependencies"]
    vulnerable = [p for p in packages if p.get("vulns")]
    skipped = [p for p in packages if "skip_reason" in p]
    for package in vulnerable:
        for vuln in package["vulns"]:
            fixed = ", ".join(vuln.get("fix_versions") or []) or "no fixed release"
            print(f"VULNERABLE {package['name']} {package['version']}: {vuln['id']} (fixed in {fixed})")
    audited = len(packages) - len(skipped)
    if skipped and audited == 0:
        message = f"audit: NOT AUDITED: the vulnerability service answered for none of the {len(packages)} packages"
        print(f"{message} ({skipped[0]['skip_reason']})", file=sys.stderr)
        return 1 if os.environ.get("AUDIT_REQUIRED") == "1" or vulnerable else 0
    for package in skipped:
        print(f"NOT AUDITED {package['name']}: {package['skip_reason']}", file=sys.stderr)
    print(f"audit: {audited} locked packages audited, {len(vulnerable)} with known vulnerabilities")
    return 1 if vulnerable or skipped else 0


if __name__ == "__main__":
    sys.exit(main())
