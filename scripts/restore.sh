#!/usr/bin/env bash
# Restore a scripts/backup.sh archive into the database named by DATABASE_URL, replacing what is there.
#
#   DATABASE_URL=postgresql://user:pass@host:5432/keel scripts/restore.sh ARCHIVE [--yes]
#
# Objects in the archive are dropped and recreated (pg_restore --clean --if-exists) in one transaction: either the
# whole archive is restored or nothing changes. Stop web, worker and beat first so nothing writes meanwhile, and run
# `manage.py migrate` afterwards if the code is newer than the backup.
set -euo pipefail

die() { echo "restore: $*" >&2; exit 1; }

archive=""
confirmed=no
for arg in "$@"; do
    case "$arg" in
        --yes | -y) confirmed=yes ;;
        -*) die "unknown option $arg" ;;
        *) [[ -z "$archive" ]] || die "only one archive at a time"; archive="$arg" ;;
    esac
done
[[ -n "$archive" ]] || die "usage: scripts/restore.sh ARCHIVE [--yes]"
[[ -r "$archive" ]] || die "cannot read $archive"

url="${DATABASE_URL:-}"
[[ -n "$url" ]] || die "DATABASE_URL is not set"
case "$url" in
    postgres://* | postgresql://*) ;;
    pgsql://* | postgis://*) url="postgresql://${url#*://}" ;;
    *) die "DATABASE_URL is not a PostgreSQL URL" ;;
esac
command -v pg_restore >/dev/null || die "pg_restore not found (install the PostgreSQL client)"

pg_restore --list "$archive" >/dev/null || die "$archive is not a pg_dump custom-format archive"
database="$(psql "$url" --no-psqlrc --tuples-only --no-align --command 'SELECT current_database()')"
if [[ "$confirmed" != yes ]]; then
    [[ -t 0 ]] || die "refusing to overwrite database '$database' without --yes"
    read -r -p "Replace the contents of database '$database' with $archive? Type the database name: " answer
    [[ "$answer" == "$database" ]] || die "not confirmed"
fi

pg_restore --clean --if-exists --no-owner --no-privileges --single-transaction --exit-on-error \
    --dbname="$url" "$archive"
echo "restore: restored $archive into '$database'"
