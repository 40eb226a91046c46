from django.apps import AppConfig


class NinjaOneConfig(AppConfig):
    name = "integrations.ninjaone"
    label = "ninjaone"
    verbose_name = "NinjaOne"
    default_auto_field = "django.db.models.BigAutoField"
