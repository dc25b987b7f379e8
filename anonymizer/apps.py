from django.apps import AppConfig


class AnonymizerConfig(AppConfig):
    name = "anonymizer"
    default_auto_field = "django.db.models.BigAutoField"
