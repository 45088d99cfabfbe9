"""The ASGI entry point granian serves, for the site DJANGO_SETTINGS_MODULE names (the interface
`concilia serve` uses)."""

from django.core.asgi import get_asgi_application

application = get_asgi_application()
