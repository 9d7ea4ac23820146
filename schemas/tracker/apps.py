from django.apps import AppConfig


class TrackerConfig(AppConfig):
    name = "schemas.tracker"
    label = "tracker"
    verbose_name = "Task tracker (a schema per tenant)"
