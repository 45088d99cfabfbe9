"""The three role groups and the permissions each holds (see accounts.models.ROLE_GROUPS)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

ROLES = {
    "Role: agent": ["work_cases"],
    "Role: supervisor": ["work_cases", "supervise_teams"],
    "Role: administrator": ["work_cases", "supervise_teams", "see_all_cases"],
}


def create_role_groups(apps, schema_editor):
    # Permissions are normally created after all migrations; the groups need them now.
    app_config = apps.get_app_config("accounts")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.add(
            *Permission.objects.filter(content_type__app_label="accounts", codename__in=codenames)
        )


class Migration(migrations.Migration):
    dependencies = [("accounts", "0002_teams")]

    operations = [migrations.RunPython(create_role_groups, migrations.RunPython.noop)]
