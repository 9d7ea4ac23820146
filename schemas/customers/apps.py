from django.apps import AppConfig


class CustomersConfig(AppConfig):
    name = "schemas.customers"
    label = "customers"
    verbose_name = "Tenants and their domains (public schema)"
