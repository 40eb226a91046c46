from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from notifications import handlers  # noqa: F401 - subscribes to the domain events people hear about
        from tenancy.services.api_keys import API_SCOPES

        API_SCOPES["notifications:read"] = "In-app notifications of the key's owner: read"
        API_SCOPES["notifications:write"] = "In-app notifications of the key's owner: mark as read"
