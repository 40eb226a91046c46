"""Django settings for Keel.

Everything that differs between machines comes from the environment through :func:`msp.env.env`;
``docs/operations.md`` and ``.env.example`` list every variable with its development and production default.
``KEEL_ENV=production`` turns on the production rules: a real secret key, DEBUG off, secure cookies, HSTS,
and no sandbox providers.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from msp.env import env, to_bool, to_count_or_off, to_list

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env("KEEL_VAR_DIR", str(BASE_DIR / "var")))

KEEL_ENV = env("KEEL_ENV", "development")
if KEEL_ENV not in {"development", "production", "test"}:
    raise ImproperlyConfigured("KEEL_ENV must be one of development, production, test")
PRODUCTION = KEEL_ENV == "production"

DEBUG = env("DEBUG", not PRODUCTION, to_bool)
_DEV_SECRET = "django-insecure-keel-development-only-0123456789-abcdefghijklmnopqrstuvwxyz"  # noqa: S105 - development only; production requires SECRET_KEY
SECRET_KEY = env("SECRET_KEY", "" if PRODUCTION else _DEV_SECRET)
ALLOWED_HOSTS = env("ALLOWED_HOSTS", [] if PRODUCTION else ["*"], to_list)
CSRF_TRUSTED_ORIGINS: list[str] = env("CSRF_TRUSTED_ORIGINS", [], to_list)
SITE_URL = env("SITE_URL", "http://127.0.0.1:8000").rstrip("/")
# Encrypts secrets Keel must read back (webhook signing secrets, OAuth tokens); SECRET_KEY when empty. Keys listed in
# FIELD_ENCRYPTION_OLD_KEYS still decrypt what they wrote, so the key can be rotated.
FIELD_ENCRYPTION_KEY = env("FIELD_ENCRYPTION_KEY", "")
FIELD_ENCRYPTION_OLD_KEYS: list[str] = env("FIELD_ENCRYPTION_OLD_KEYS", [], to_list)
# Partner webhooks may not reach private, loopback or link-local addresses unless this is on (tests, local receivers).
WEBHOOKS_ALLOW_PRIVATE = env("WEBHOOKS_ALLOW_PRIVATE", False, to_bool)

# External providers. Each has a real adapter and a "sandbox" that records what it would do.
EMAIL_PROVIDER = env("EMAIL_PROVIDER", "sendgrid" if PRODUCTION else "sandbox")
# Payments: the real Stripe adapter when a secret key is configured, otherwise the local sandbox checkout.
STRIPE_SECRET_KEY = env("STRIPE_SECRET_KEY", "")
STRIPE_PROVIDER = env("STRIPE_PROVIDER", "stripe" if (PRODUCTION or STRIPE_SECRET_KEY) else "sandbox")
_SANDBOX_WEBHOOK_SECRET = "whsec_keel_sandbox_development_only"  # noqa: S105 - the sandbox signs its own events
STRIPE_WEBHOOK_SECRET = env("STRIPE_WEBHOOK_SECRET", "" if STRIPE_PROVIDER == "stripe" else _SANDBOX_WEBHOOK_SECRET)
# Seconds a signed webhook stays acceptable: older (or replayed later) deliveries are refused.
STRIPE_WEBHOOK_TOLERANCE = env("STRIPE_WEBHOOK_TOLERANCE", 300, int)
STRIPE_API_VERSION = env("STRIPE_API_VERSION", "")
# Contract invoices: how failed card payments are retried (waits between tries, and the most tries in all), which
# days from the due date bring a reminder (negative: before it), and how many days overdue a late fee waits.
BILLING_RETRY_SCHEDULE = env("BILLING_RETRY_SCHEDULE", "1h,6h,1d,3d,7d")
BILLING_MAX_PAYMENT_ATTEMPTS = env("BILLING_MAX_PAYMENT_ATTEMPTS", 6, int)
BILLING_REMINDER_DAYS = env("BILLING_REMINDER_DAYS", "-3,1,7,14")
BILLING_LATE_FEE_AFTER_DAYS = env("BILLING_LATE_FEE_AFTER_DAYS", 7, int)
# Recurring invoicing: batches claimed at once, each on its own database connection (PostgreSQL).
BILLING_GENERATION_WORKERS = env("BILLING_GENERATION_WORKERS", 2, int)
# Who issues the invoices (printed on each PDF; an Australian tax invoice names its supplier and ABN). Address lines
# are separated by semicolons.
BILLING_ISSUER_NAME = env("BILLING_ISSUER_NAME", "Keel Managed Services Pty Ltd")
BILLING_ISSUER_ABN = env("BILLING_ISSUER_ABN", "")
BILLING_ISSUER_ADDRESS = env("BILLING_ISSUER_ADDRESS", "")
BILLING_ISSUER_EMAIL = env("BILLING_ISSUER_EMAIL", "")
# SMS: Twilio when an auth token is configured (and always in production), otherwise the local sandbox, which signs
# its simulated status callbacks with a development token.
TWILIO_ACCOUNT_SID = env("TWILIO_ACCOUNT_SID", "")
TWILIO_AUTH_TOKEN = env("TWILIO_AUTH_TOKEN", "")
SMS_PROVIDER = env("SMS_PROVIDER", "twilio" if (PRODUCTION or TWILIO_AUTH_TOKEN) else "sandbox")
if SMS_PROVIDER == "sandbox":
    TWILIO_ACCOUNT_SID = TWILIO_ACCOUNT_SID or "AC" + "0" * 32
    TWILIO_AUTH_TOKEN = TWILIO_AUTH_TOKEN or "keel-sandbox-twilio-token"  # the sandbox signs its own callbacks
# Short links in messages: https://<SMS_SHORT_DOMAIN>/s/<token>, valid SMS_SHORT_LINK_DAYS.
SMS_SHORT_DOMAIN = env("SMS_SHORT_DOMAIN", SITE_URL.split("://", 1)[-1].split("/", 1)[0])
SMS_SHORT_LINK_DAYS = env("SMS_SHORT_LINK_DAYS", 60, int)
# The sandbox posts simulated, signed status callbacks to SITE_URL's /webhooks/twilio/status/ after each send.
SMS_DISPATCH_SECONDS = env("SMS_DISPATCH_SECONDS", 20.0, float)
SMS_SANDBOX_CALLBACKS = env("SMS_SANDBOX_CALLBACKS", SMS_PROVIDER == "sandbox", to_bool)
# Integrations (integrations/): each has a real adapter and a sandbox, like the providers above.
# NinjaOne RMM: alerts arrive at /webhooks/ninjaone/ carrying NINJAONE_WEBHOOK_SECRET; devices are listed through its
# API with client credentials.
NINJAONE_WEBHOOK_SECRET = env("NINJAONE_WEBHOOK_SECRET", "" if PRODUCTION else "keel-ninjaone-dev-secret")
NINJAONE_BASE_URL = env("NINJAONE_BASE_URL", "https://app.ninjarmm.com")
NINJAONE_CLIENT_ID = env("NINJAONE_CLIENT_ID", "")
NINJAONE_CLIENT_SECRET = env("NINJAONE_CLIENT_SECRET", "")
NINJAONE_PROVIDER = env("NINJAONE_PROVIDER", "ninjaone" if (PRODUCTION or NINJAONE_CLIENT_ID) else "sandbox")
# Calendly: invitee events at /webhooks/calendly/ signed with the webhook subscription's signing key; prospects book
# discovery calls at CALENDLY_BOOKING_URL.
CALENDLY_WEBHOOK_SIGNING_KEY = env("CALENDLY_WEBHOOK_SIGNING_KEY", "" if PRODUCTION else "keel-calendly-dev-key")
CALENDLY_WEBHOOK_TOLERANCE = env("CALENDLY_WEBHOOK_TOLERANCE", 180, int)
CALENDLY_BOOKING_URL = env("CALENDLY_BOOKING_URL", "")
# QuickBooks Online: staff connect the company through OAuth 2 (Intuit's app credentials below).
QBO_CLIENT_ID = env("QBO_CLIENT_ID", "")
QBO_CLIENT_SECRET = env("QBO_CLIENT_SECRET", "")
QBO_ENVIRONMENT = env("QBO_ENVIRONMENT", "production" if PRODUCTION else "sandbox")
QBO_PROVIDER = env("QBO_PROVIDER", "quickbooks" if (PRODUCTION or QBO_CLIENT_ID) else "sandbox")
PROVIDER_SETTINGS = {
    "EMAIL_PROVIDER": EMAIL_PROVIDER,
    "STRIPE_PROVIDER": STRIPE_PROVIDER,
    "SMS_PROVIDER": SMS_PROVIDER,
    "NINJAONE_PROVIDER": NINJAONE_PROVIDER,
    "QBO_PROVIDER": QBO_PROVIDER,
}
# Inbound mail (SendGrid Inbound Parse to /anymail/sendgrid/inbound/) must carry these basic-auth credentials,
# "user:password", as https://user:password@host/anymail/sendgrid/inbound/.
_DEV_INBOUND_SECRET = "keel:inbound-dev-secret"  # noqa: S105 - development only; production requires its own
ANYMAIL_WEBHOOK_SECRET = env("ANYMAIL_WEBHOOK_SECRET", "" if PRODUCTION else _DEV_INBOUND_SECRET)
if ANYMAIL_WEBHOOK_SECRET and ":" not in ANYMAIL_WEBHOOK_SECRET:
    raise ImproperlyConfigured("ANYMAIL_WEBHOOK_SECRET must be user:password")

if PRODUCTION:
    if not SECRET_KEY:
        raise ImproperlyConfigured("SECRET_KEY is required when KEEL_ENV=production")
    if DEBUG:
        raise ImproperlyConfigured("DEBUG must be off when KEEL_ENV=production")
    _sandboxed = sorted(name for name, value in PROVIDER_SETTINGS.items() if value == "sandbox")
    if _sandboxed:
        raise ImproperlyConfigured(f"sandbox providers are not allowed in production: {', '.join(_sandboxed)}")
    for _required in (
        "STRIPE_SECRET_KEY",
        "STRIPE_WEBHOOK_SECRET",
        "ANYMAIL_WEBHOOK_SECRET",
        "TWILIO_ACCOUNT_SID",
        "TWILIO_AUTH_TOKEN",
    ):
        if not globals()[_required]:
            raise ImproperlyConfigured(f"{_required} is required when KEEL_ENV=production")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "axes",
    "anymail",
    "django_htmx",
    "tenancy",
    "events",
    "qualification",
    "quotes",
    "billing",
    "tickets",
    "sms",
    "notifications",
    "integrations.ninjaone",
    "integrations.calendly",
    "integrations.quickbooks",
    "portal",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "msp.security.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "msp.middleware.UnavailableMiddleware",
    "msp.sessions.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "tenancy.session_user.AuthenticationMiddleware",  # Django's, with the signed-in person's row cached
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "portal.middleware.PortalMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",
]

# Sent with every response (msp.security). Scripts only from Keel's static files; no framing by other sites.
CONTENT_SECURITY_POLICY: dict[str, list[str]] = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'", "'unsafe-inline'"],
    "img-src": ["'self'", "data:"],
    "font-src": ["'self'"],
    "connect-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "frame-ancestors": ["'none'"],
}

ROOT_URLCONF = "msp.urls"
WSGI_APPLICATION = "msp.wsgi.application"
ASGI_APPLICATION = "msp.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.context_processors.portal",
            ],
            # {% url %} remembering the paths of argument-less names (it replaces Django's tag).
            "builtins": ["portal.templatetags.portal_urls"],
        },
    }
]

DATABASES = {
    "default": dj_database_url.parse(
        env("DATABASE_URL", f"sqlite:///{VAR_DIR / 'keel.sqlite3'}"),
        conn_max_age=env("DATABASE_CONN_MAX_AGE", 60, int),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Django's, with a health check that needs no query and prepared statements for the hottest statements.
    DATABASES["default"]["ENGINE"] = "msp.postgresql"
    prepare_after: int | None = 2
    prepare_after = env("DATABASE_PREPARE_THRESHOLD", prepare_after, to_count_or_off)
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = prepare_after
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # `make run` has the web server and two worker processes writing to one file: take the write lock when a
    # transaction starts and wait for it, rather than failing with "database is locked" on upgrade.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env("REDIS_URL")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "msp.cache.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "keel"}}
# Events are fanned out by a relay that a shared cache's doorbell wakes (events.services.relay_ring): one task for
# however many events commit while it runs. A process-local cache cannot be a doorbell for other processes, so
# without Redis each event queues its own fan-out task.
EVENTS_RELAY = bool(REDIS_URL)

AUTH_USER_MODEL = "tenancy.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "sesame.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "portal:login"
LOGIN_REDIRECT_URL = "portal:dashboard"
LOGOUT_REDIRECT_URL = "portal:login"
PASSWORD_RESET_TIMEOUT = env("PASSWORD_RESET_TIMEOUT", 3600, int)

# Sessions end after SESSION_IDLE_SECONDS without a request: msp.sessions pushes the expiry forward at most once a
# minute, when a request uses the session.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
SESSION_COOKIE_AGE = env("SESSION_IDLE_SECONDS", 7200, int)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"

# Security headers. Secure cookies and HSTS are on in production (TLS terminates at or before gunicorn).
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_SECURE = PRODUCTION
CSRF_COOKIE_SECURE = PRODUCTION
SECURE_SSL_REDIRECT = env("SECURE_SSL_REDIRECT", PRODUCTION, to_bool)
SECURE_HSTS_SECONDS = env("SECURE_HSTS_SECONDS", 31536000 if PRODUCTION else 0, int)
SECURE_HSTS_INCLUDE_SUBDOMAINS = PRODUCTION
SECURE_HSTS_PRELOAD = PRODUCTION
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if PRODUCTION else None
SECURE_REDIRECT_EXEMPT = [r"^health$"]

# Login lockout (django-axes): AXES_FAILURE_LIMIT failures for one email from one address lock it out for
# AXES_COOLOFF_MINUTES.
AXES_FAILURE_LIMIT = env("AXES_FAILURE_LIMIT", 5, int)
AXES_COOLOFF_TIME = timedelta(minutes=env("AXES_COOLOFF_MINUTES", 15, int))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "portal/auth/locked_out.html"
AXES_VERBOSE = False
AXES_IPWARE_PROXY_COUNT = env("AXES_PROXY_COUNT", 1 if PRODUCTION else 0, int) or None

# Magic links (django-sesame): short-lived and single use.
SESAME_MAX_AGE = env("MAGIC_LINK_MAX_AGE", 900, int)
SESAME_ONE_TIME = True
# The sign-in link in a new customer's welcome email (also single use).
WELCOME_LINK_MAX_AGE = env("WELCOME_LINK_MAX_AGE", 7 * 86400, int)
SESAME_TOKEN_NAME = "token"  # noqa: S105 - the query parameter name, not a secret

OTP_TOTP_ISSUER = env("OTP_ISSUER", "Keel")

LANGUAGE_CODE = "en-au"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
MEDIA_ROOT = VAR_DIR / "media"
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

# Email through django-anymail. The sandbox writes each message to EMAIL_FILE_PATH instead of sending it.
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "Keel <support@keel.test>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
ANYMAIL = {"SENDGRID_API_KEY": env("SENDGRID_API_KEY", ""), "WEBHOOK_SECRET": ANYMAIL_WEBHOOK_SECRET}
# Inbound mail from an address Keel cannot place: "reject" (a polite automatic reply; nothing is kept) or "queue"
# (kept for staff as a queued email).
SUPPORT_INBOUND_UNKNOWN_SENDER = env("SUPPORT_INBOUND_UNKNOWN_SENDER", "reject")
if SUPPORT_INBOUND_UNKNOWN_SENDER not in {"reject", "queue"}:
    raise ImproperlyConfigured("SUPPORT_INBOUND_UNKNOWN_SENDER must be reject or queue")
if EMAIL_PROVIDER == "sendgrid":
    EMAIL_BACKEND = "anymail.backends.sendgrid.EmailBackend"
else:
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = VAR_DIR / "mail"
# anymail still ships its SendGrid backend but no longer tests it upstream (anymail.W003). Keel's own test suite
# exercises that backend against recorded SendGrid HTTP (tests/tenancy/test_email.py), so the warning is covered.
# models.W040: SQLite (make run) ignores an index's INCLUDE columns; the index still works, PostgreSQL uses them.
SILENCED_SYSTEM_CHECKS = ["anymail.W003", "models.W040"]

# Celery. Without REDIS_URL (or CELERY_BROKER_URL) the broker is kombu's filesystem transport under var/,
# so `make run` needs no servers.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", REDIS_URL or "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    for _folder in ("queue", "processed", "control"):
        (_broker_dir / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
        # kombu waits this long whenever it takes nothing, including while both worker processes are busy (1 s by
        # default, which held the worker to about two jobs a second). Listing a folder ten times a second is cheap.
        "polling_interval": 0.1,
    }
else:
    # A task whose worker died unacknowledged (acks_late) is handed out again after this many seconds.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env("CELERY_VISIBILITY_TIMEOUT", 3600, int)}
    if CELERY_BROKER_URL.split("://", 1)[0] in {"redis", "rediss"}:
        # kombu's Redis transport, publishing through one client per channel rather than a new one per task.
        CELERY_BROKER_TRANSPORT = "msp.broker:Transport"
CELERY_TASK_ALWAYS_EAGER = env("CELERY_TASK_ALWAYS_EAGER", False, to_bool)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "events-redeliver-stalled": {"task": "events.tasks.redeliver_stalled", "schedule": 60.0},
    "events-webhooks-due": {"task": "events.tasks.webhooks_due", "schedule": 30.0},
    "tenancy-purge-expired-invitations": {"task": "tenancy.tasks.purge_expired_invitations", "schedule": 3600.0},
    "quotes-expire": {"task": "quotes.tasks.expire_quotes", "schedule": 900.0},
    "billing-retry-stripe-events": {"task": "billing.tasks.retry_stripe_events", "schedule": 30.0},
    "tickets-check-sla-breaches": {"task": "tickets.tasks.check_sla_breaches", "schedule": 900.0},
    "billing-generate-recurring-invoices": {
        "task": "billing.tasks.generate_recurring_invoices",
        "schedule": crontab(hour=0, minute=30),
    },
    # Every few seconds; a run stops after SMS_DISPATCH_SECONDS, and a tick left waiting in the queue expires.
    "sms-dispatch": {"task": "sms.tasks.dispatch_messages", "schedule": 5.0, "options": {"expires": 5.0}},
    "sms-purge-counters": {"task": "sms.tasks.purge_counters", "schedule": 3600.0},
    "sms-tell-more-replies": {"task": "sms.tasks.tell_more_replies", "schedule": 300.0},
    "sms-settle-sent": {"task": "sms.tasks.settle_sent_messages", "schedule": 600.0},
    "notifications-retry-due": {"task": "notifications.tasks.retry_due", "schedule": 60.0},
    "tenancy-send-scheduled-reports": {"task": "tenancy.tasks.send_scheduled_reports", "schedule": 900.0},
    "ninjaone-sync-devices": {"task": "integrations.ninjaone.tasks.sync_devices", "schedule": 3600.0},
    "quickbooks-sync-due": {"task": "integrations.quickbooks.tasks.sync_due", "schedule": 300.0},
    "billing-process-failed-payments": {
        "task": "billing.tasks.process_failed_payments",
        "schedule": crontab(minute=15),
    },
    "billing-send-unsent-invoices": {"task": "billing.tasks.send_unsent_invoices", "schedule": 3600.0},
    "msp-forget-provider-payloads": {
        "task": "msp.retention.forget_provider_payloads",
        "schedule": crontab(hour=3, minute=10),
    },
}
CELERY_IMPORTS = ["msp.retention"]  # not an app: its task is registered here

# Days a provider's webhook body is kept once it was dealt with (msp/retention.py); the row itself stays.
PROVIDER_PAYLOAD_DAYS = env("PROVIDER_PAYLOAD_DAYS", 90, int)
if PROVIDER_PAYLOAD_DAYS < 7:
    raise ImproperlyConfigured("PROVIDER_PAYLOAD_DAYS must be at least 7: providers redeliver for days.")

# Partner API.
API_KEY_RATE = env("API_KEY_RATE", "600/min")
API_PUBLIC_RATE = env("API_PUBLIC_RATE", "60/min")
# Refused API keys one client address may present per 10 minutes before every key from it is refused (429).
API_KEY_FAILURE_LIMIT = env("API_KEY_FAILURE_LIMIT", 30, int)
# Seconds an answer of the busiest API lists may be reused for the same caller and query while the organization's
# data is unchanged (tenancy/api_cache.py); 0 turns reuse off.
API_LIST_CACHE_SECONDS = env("API_LIST_CACHE_SECONDS", 1, int)
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tenancy.api_auth.ApiKeyAuthentication",
        "tenancy.api_auth.VerifiedSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["tenancy.api_policy.HasTenantAccess"],
    "DEFAULT_THROTTLE_CLASSES": ["tenancy.api_auth.ApiKeyRateThrottle", "tenancy.api_auth.RatePolicyThrottle"],
    "DEFAULT_THROTTLE_RATES": {"api_key": API_KEY_RATE, "public": API_PUBLIC_RATE},
    "DEFAULT_PAGINATION_CLASS": "tenancy.api_policy.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PARSER_CLASSES": [
        "tenancy.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_RENDERER_CLASSES": ["tenancy.renderers.JSONRenderer"]
    + (["rest_framework.renderers.BrowsableAPIRenderer"] if DEBUG else []),
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "tenancy.renderers.ContentNegotiation",
    "EXCEPTION_HANDLER": "tenancy.api_base.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Keel API",
    "DESCRIPTION": "The partner API of Keel. Authenticate with `Authorization: Bearer <api key>`; a partner key "
    "chooses the organization it acts for with the `X-Organization` header (slug or id).",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # The API speaks JSON (the contact import takes a file upload and says so itself); the form parsers DRF also
    # accepts stay out of the schema.
    "PARSER_WHITELIST": ["rest_framework.parsers.JSONParser"],
    "ENUM_NAME_OVERRIDES": {"TicketStatusEnum": "tickets.models.TicketStatus"},
    # The error responses of the API conventions (400, 401, 403, 404, 429) on every operation that may give them, and
    # the input rules that hold everywhere (see tenancy.api_base.document_error_responses).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "tenancy.api_base.document_error_responses",
    ],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    # Twilio's HTTP client logs every request at INFO, phone numbers included.
    "loggers": {"axes": {"level": "WARNING"}, "twilio.http_client": {"level": "WARNING"}},
}
