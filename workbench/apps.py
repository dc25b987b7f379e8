from django.apps import AppConfig


class WorkbenchConfig(AppConfig):
    name = "workbench"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from workbench import (
            multipart,
            signals,  # noqa: F401  (login auditing)
        )

        multipart.install()
