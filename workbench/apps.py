from django.apps import AppConfig


class WorkbenchConfig(AppConfig):
    name = "workbench"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from workbench import signals  # noqa: F401  (login auditing)
        from workbench.api import parsers

        parsers.install()
