from django.apps import AppConfig


class GrpcapiConfig(AppConfig):
    name = "grpcapi"
    default_auto_field = "django.db.models.BigAutoField"
