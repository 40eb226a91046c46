"""Hypothesis settings shared by the fuzz suites: bounded, repeatable runs (CI must stay fast and deterministic)."""

from hypothesis import HealthCheck, settings

FUZZ = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
