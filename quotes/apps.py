from django.apps import AppConfig


class QuotesConfig(AppConfig):
    name = "quotes"
    verbose_name = "Quotes and price book"
    default_auto_field = "django.db.models.BigAutoField"
