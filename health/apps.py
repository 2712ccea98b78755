from django.apps import AppConfig


class HealthConfig(AppConfig):
    name = "health"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # With Redis configured, every process forwards its service-layer changes to the
        # workers' runtimes (a no-op in the embedded default).
        from .tasks import forward_changes

        forward_changes()
