#!/usr/bin/env bash
# Back up Keel's PostgreSQL database to a custom-format archive (pg_dump -Fc).
#
#   DATABASE_URL=postgresql://user:pass@host:5432/keel scripts/backup.sh [OUTPUT_FILE]
#
# Without OUTPUT_FILE the archive goes to backups/keel-<UTC timestamp>.dump. Restore it with scripts/restore.sh.
# The archive holds no ownership or privileges, so it restores into a database owned by any role.
# Inside the compose deployment: docker compose exec -T web scripts/backup.sh - > keel.dump  ("-" = stdout).
set -euo pipefail

die() { echo "backup: $*" >&2; exit 1; }

url="${DATABASE_URL:-}"
[[ -n "$url" ]] || die "DATABASE_URL is not set"
case "$url" in
    postgres://* | postgresql://*) ;;
    pgsql://* | postgis://*) url="postgresql://${url#*://}" ;;  # spellings dj-database-url accepts, libpq does not
    *) die "DATABASE_URL is not a PostgreSQL URL (backups cover PostgreSQL only)" ;;
esac
command -v pg_dump >/dev/null || die "pg_dump not found (install the PostgreSQL client)"

output="${1:-backups/keel-$(date -u +%Y%m%dT%H%M%SZ).dump}"
if [[ "$output" == "-" ]]; then
    exec pg_dump --format=custom --no-owner --no-privileges --dbname="$url"
fi
mkdir -p "$(dirname "$output")"
tmp="$output.partial"
trap 'rm -f "$tmp"' EXIT
pg_dump --format=custom --no-owner --no-privileges --dbname="$url" --file="$tmp"
mv "$tmp" "$output"
trap - EXIT
echo "backup: wrote $output ($(du -h "$output" | cut -f1))"
