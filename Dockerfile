# syntax=docker/dockerfile:1
# Keel's production image: one image, three roles (web, worker, beat) chosen by the entrypoint's argument.
#   docker build -t keel .
#   docker run --env-file .env keel web|worker|beat|migrate|manage <command>
# Debian trixie is pinned so the PostgreSQL client (used by scripts/backup.sh) is a known major version (17), which
# can dump servers up to 17.
FROM python:3.11-slim-trixie

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    KEEL_VAR_DIR=/app/var

RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-client \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 keel \
    && useradd --system --uid 10001 --gid keel --home-dir /app --shell /usr/sbin/nologin keel

WORKDIR /app

# Dependencies first, so code changes reuse this layer. Only the runtime dependencies of pyproject.toml are
# installed, each at exactly the version requirements.lock pins (the lock is the constraint); the dev tools the
# lock also holds stay out of the image.
COPY pyproject.toml requirements.lock ./
RUN python -m venv "$VIRTUAL_ENV" \
    && python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/runtime-requirements.txt \
    && pip install --requirement /tmp/runtime-requirements.txt --constraint requirements.lock \
    && rm /tmp/runtime-requirements.txt

# Code stays owned by root: the app user can read it but not change it; only var/ (media, beat schedule) is its own.
COPY . .

# Static files are collected at build time (whitenoise serves them, hashed and compressed). The settings need
# production values to load; these dummies exist only during this step and are not kept in the image.
RUN KEEL_ENV=production \
    SECRET_KEY=build-only-collectstatic-not-a-secret-0123456789abcdefghijklmnop \
    ALLOWED_HOSTS=localhost \
    EMAIL_PROVIDER=sendgrid \
    SENDGRID_API_KEY=build-only \
    python manage.py collectstatic --noinput \
    && mkdir -p var/media var/broker \
    && chown -R keel:keel var \
    && chmod +x scripts/*.sh

USER keel
EXPOSE 8000
# Health checks are declared per role in docker-compose.yml (web: scripts/healthcheck.py; worker: celery ping).

ENTRYPOINT ["/app/scripts/entrypoint.sh"]
CMD ["web"]
