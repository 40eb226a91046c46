"""Settings for the test suite: msp.settings with fast hashing, in-memory email, eager Celery."""

from msp.settings import *  # noqa: F403
from msp.settings import REST_FRAMEWORK

KEEL_ENV = "test"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
CELERY_TASK_ALWAYS_EAGER = True
SMS_SANDBOX_CALLBACKS = False  # tests post callbacks through the test client when they want them
CELERY_TASK_EAGER_PROPAGATES = False
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "keel-tests"}}
EVENTS_RELAY = False  # the cache is this process's own (tests of the relay turn it on)
REST_FRAMEWORK = {**REST_FRAMEWORK, "DEFAULT_RENDERER_CLASSES": ["tenancy.renderers.JSONRenderer"]}
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
