"""The floor's one table: a row per request."""

from django.db import models


class Row(models.Model):
    email = models.EmailField()
    body = models.TextField()
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.email
