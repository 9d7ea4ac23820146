from django.apps import AppConfig


class CatalogueConfig(AppConfig):
    name = "multidb.catalogue"
    label = "catalogue"
    verbose_name = "Tenant catalogue"
