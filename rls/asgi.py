import os

from django.core.asgi import get_asgi_application

# A web server: the settings leave the owner role out (shared.env.owner_database).
os.environ["TENANCY_SERVING"] = "1"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rls.settings")

application = get_asgi_application()

from rls.checks import refuse_unsafe_database  # noqa: E402

refuse_unsafe_database()
