from django.apps import AppConfig


class CalendlyConfig(AppConfig):
    name = "integrations.calendly"
    label = "calendly"
    verbose_name = "Calendly"
    default_auto_field = "django.db.models.BigAutoField"
