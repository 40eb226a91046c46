from django.apps import AppConfig
from django.db.models.signals import post_migrate


class TenancyConfig(AppConfig):
    name = "tenancy"
    verbose_name = "Tenancy and identity"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from tenancy import api_schema, exporters, signals  # noqa: F401  (registers handlers and extensions)
        from tenancy.staff import ensure_staff_groups

        post_migrate.connect(ensure_staff_groups, dispatch_uid="tenancy.ensure_staff_groups")
