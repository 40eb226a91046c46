from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "events"
    verbose_name = "Events"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from events import webhooks  # registers the partner webhook fan-out with the outbox
        from tenancy.services.api_keys import API_SCOPES

        del webhooks
        API_SCOPES["webhooks:read"] = "Partner webhook endpoints and their deliveries: read"
        API_SCOPES["webhooks:write"] = "Partner webhook endpoints: create, change, test, redeliver"
