"""Wait for the database, then apply migrations once even when several containers start together.

On PostgreSQL the migrations run under a session advisory lock, so a second web container that starts at the same
time waits for the first and then finds nothing to do. Used by scripts/entrypoint.sh (``web`` and ``migrate``).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WAIT_SECONDS = float(os.environ.get("DATABASE_WAIT_SECONDS", "60"))
# An arbitrary constant that names "Keel migrations" among PostgreSQL advisory locks.
MIGRATION_LOCK_ID = 7_346_221_001


def main() -> int:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "msp.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import OperationalError, connection

    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        try:
            connection.ensure_connection()
            break
        except OperationalError as exc:
            if time.monotonic() > deadline:
                print(f"database still unreachable after {WAIT_SECONDS:.0f}s: {exc}", file=sys.stderr)
                return 1
            print("waiting for the database…", file=sys.stderr)
            time.sleep(2)

    if connection.vendor != "postgresql":
        call_command("migrate", interactive=False)
        return 0
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [MIGRATION_LOCK_ID])
        try:
            call_command("migrate", interactive=False)
        finally:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [MIGRATION_LOCK_ID])
    return 0


if __name__ == "__main__":
    sys.exit(main())
