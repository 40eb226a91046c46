#!/bin/sh
# Container entrypoint: `web`, `worker`, `beat`, `migrate`, `manage …`, or any command.
#
#   web      apply migrations (unless MIGRATE_ON_START=0), then serve with gunicorn on :8000
#   worker   a Celery worker (CELERY_CONCURRENCY processes, default: one per CPU)
#   beat     Celery beat — run exactly one in a deployment, or scheduled tasks run twice
#   migrate  wait for the database and apply migrations, then exit (a release step)
#   manage   python manage.py with the remaining arguments (e.g. `manage createsuperuser`)
set -eu

case "${1:-web}" in
web)
    if [ "${MIGRATE_ON_START:-1}" = "1" ]; then
        python scripts/migrate.py
    fi
    # WEB_CONCURRENCY (gunicorn reads it itself) sets the worker count; default 2 × CPUs + 1 is too many for
    # small containers, so default to 3.
    exec gunicorn msp.wsgi:application \
        --bind "0.0.0.0:${PORT:-8000}" \
        --workers "${WEB_CONCURRENCY:-3}" \
        --timeout "${GUNICORN_TIMEOUT:-30}" \
        --graceful-timeout 25 \
        --max-requests 2000 --max-requests-jitter 200 \
        --forwarded-allow-ips "${FORWARDED_ALLOW_IPS:-*}" \
        --access-logfile - --error-logfile -
    ;;
worker)
    set -- celery -A msp worker --loglevel "${LOG_LEVEL:-INFO}" --without-gossip --without-mingle
    if [ -n "${CELERY_CONCURRENCY:-}" ]; then
        set -- "$@" --concurrency "$CELERY_CONCURRENCY"
    fi
    exec "$@"
    ;;
beat)
    exec celery -A msp beat --loglevel "${LOG_LEVEL:-INFO}"
    ;;
migrate)
    exec python scripts/migrate.py
    ;;
manage)
    shift
    exec python manage.py "$@"
    ;;
*)
    exec "$@"
    ;;
esac
