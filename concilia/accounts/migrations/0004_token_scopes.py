"""API token scopes, last use and rotation expiry.

Tokens issued before scopes existed could read and work cases and file complaints, so they get
exactly those scopes (cases:read, cases:write, complaints:write) and keep working as before;
webhooks:manage is only ever granted explicitly.
"""

from django.db import migrations, models

LEGACY_SCOPES = ["cases:read", "cases:write", "complaints:write"]


def grant_legacy_scopes(apps, schema_editor):
    ApiToken = apps.get_model("accounts", "ApiToken")
    ApiToken.objects.update(scopes=LEGACY_SCOPES)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_role_groups"),
    ]

    operations = [
        migrations.AddField(
            model_name="apitoken",
            name="expires_at",
            field=models.DateTimeField(
                blank=True,
                editable=False,
                help_text="Set when the token was rotated with a grace period.",
                null=True,
                verbose_name="expires",
            ),
        ),
        migrations.AddField(
            model_name="apitoken",
            name="last_used_at",
            field=models.DateTimeField(
                blank=True, editable=False, null=True, verbose_name="last used"
            ),
        ),
        migrations.AddField(
            model_name="apitoken",
            name="scopes",
            field=models.JSONField(
                blank=True,
                default=list,
                help_text="What the token may do; the user's own permissions still apply.",
                verbose_name="scopes",
            ),
        ),
        migrations.AlterField(
            model_name="apitoken",
            name="revoked_at",
            field=models.DateTimeField(
                blank=True, editable=False, null=True, verbose_name="revoked"
            ),
        ),
        migrations.RunPython(grant_legacy_scopes, migrations.RunPython.noop),
    ]
