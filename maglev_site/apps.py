from django.apps import AppConfig


class SiteConfig(AppConfig):
    """The project itself as an app: the composition root and the commands that start each
    process shape (maglevd, grpcserver) live here, above the apps they put together."""

    name = "maglev_site"
    label = "maglev_site"

    def ready(self) -> None:
        # With Redis configured, every process forwards its service-layer changes to the
        # workers' runtimes (a no-op in the embedded default).
        from health.tasks import forward_changes

        forward_changes()
