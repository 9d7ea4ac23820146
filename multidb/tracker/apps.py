from django.apps import AppConfig


class TrackerConfig(AppConfig):
    name = "multidb.tracker"
    label = "tracker"
    verbose_name = "Task tracker (one database per tenant)"
