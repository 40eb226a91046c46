"""Settings for benchmark servers: Keel's own settings, with the benchmark URLs (a bare view) mounted too."""

from msp.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
