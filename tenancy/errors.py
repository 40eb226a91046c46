"""Errors raised by services. Views and the API turn them into form errors, 400 or 409 responses."""

from django.core.exceptions import ValidationError


class ServiceValidationError(ValidationError):
    """Bad input, reported per field: ``ServiceValidationError({"field": ["reason"]})``."""


class ConflictError(Exception):
    """The request conflicts with the current state (a duplicate, the last owner, ...)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


def field_error(field: str, message: str) -> ServiceValidationError:
    return ServiceValidationError({field: [message]})
