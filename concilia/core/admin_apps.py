"""django.contrib.admin's app, with the audited admin site (concilia.core.admin_audit) as its
default site. Kept apart: an app's configuration module may not import models."""

from django.contrib.admin.apps import AdminConfig


class AuditedAdminConfig(AdminConfig):
    default_site = "concilia.core.admin_audit.AuditedAdminSite"
