"""The audit log: its entries, the chain's head row, the triggers that keep both append-only,
and the data-protection officer's role group, which may read and export the log."""

from django.contrib.auth.management import create_permissions
from django.db import migrations, models

GENESIS = "0" * 64
DPO_GROUP = "Role: data-protection officer"
DPO_PERMISSIONS = ["view_auditentry", "export_auditentry"]

# PostgreSQL: entries refuse UPDATE and DELETE; the head refuses DELETE and moves one entry at a
# time. TRUNCATE (how the tests empty tables) is left alone.
POSTGRESQL_TRIGGERS = """
CREATE FUNCTION concilia_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'The audit log is append-only: % of an entry refused', TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END $$;
CREATE TRIGGER core_auditentry_append_only BEFORE UPDATE OR DELETE ON core_auditentry
    FOR EACH ROW EXECUTE FUNCTION concilia_audit_append_only();
CREATE FUNCTION concilia_audit_head_forward() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR NEW.seq <> OLD.seq + 1 THEN
        RAISE EXCEPTION 'The audit chain head only moves forward, one entry at a time'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER core_auditchainhead_forward BEFORE UPDATE OR DELETE ON core_auditchainhead
    FOR EACH ROW EXECUTE FUNCTION concilia_audit_head_forward();
"""
POSTGRESQL_DROP = """
DROP TRIGGER IF EXISTS core_auditentry_append_only ON core_auditentry;
DROP FUNCTION IF EXISTS concilia_audit_append_only();
DROP TRIGGER IF EXISTS core_auditchainhead_forward ON core_auditchainhead;
DROP FUNCTION IF EXISTS concilia_audit_head_forward();
"""
# SQLite: the same for UPDATE. Not for DELETE: Django empties SQLite tables with DELETE (a flush
# between transactional tests), which such a trigger would abort; `audit verify` finds deletions.
SQLITE_TRIGGERS = [
    """CREATE TRIGGER core_auditentry_append_only BEFORE UPDATE ON core_auditentry
    BEGIN SELECT RAISE(ABORT, 'The audit log is append-only: UPDATE of an entry refused'); END""",
    """CREATE TRIGGER core_auditchainhead_forward BEFORE UPDATE ON core_auditchainhead
    WHEN NEW.seq <> OLD.seq + 1
    BEGIN SELECT RAISE(ABORT, 'The audit chain head only moves forward, one entry at a time');
    END""",
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS core_auditentry_append_only",
    "DROP TRIGGER IF EXISTS core_auditchainhead_forward",
]


def _run(schema_editor, statements):
    """The statements for this database (others, if any, get no triggers)."""
    for statement in statements.get(schema_editor.connection.vendor, ()):
        schema_editor.execute(statement, params=None)


def add_triggers(apps, schema_editor):
    _run(schema_editor, {"postgresql": [POSTGRESQL_TRIGGERS], "sqlite": SQLITE_TRIGGERS})


def drop_triggers(apps, schema_editor):
    _run(schema_editor, {"postgresql": [POSTGRESQL_DROP], "sqlite": SQLITE_DROP})


def start_chain(apps, schema_editor):
    apps.get_model("core", "AuditChainHead").objects.create(pk=1, seq=0, hash=GENESIS)


def create_dpo_group(apps, schema_editor):
    # Permissions are normally created after all migrations; the group needs them now.
    app_config = apps.get_app_config("core")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _created = Group.objects.get_or_create(name=DPO_GROUP)
    group.permissions.add(
        *Permission.objects.filter(content_type__app_label="core", codename__in=DPO_PERMISSIONS)
    )


def remove_dpo_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name=DPO_GROUP).delete()


class Migration(migrations.Migration):

    dependencies = [
        ('core', '0005_dead_job'),
        ('auth', '0012_alter_user_first_name_max_length'),
        ('contenttypes', '0002_remove_content_type_name'),
    ]

    operations = [
        migrations.CreateModel(
            name='AuditChainHead',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('seq', models.PositiveBigIntegerField(default=0)),
                ('hash', models.CharField(max_length=64)),
            ],
            options={
                'default_permissions': (),
            },
        ),
        migrations.CreateModel(
            name='AuditEntry',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('seq', models.PositiveBigIntegerField(unique=True, verbose_name='number')),
                ('at', models.DateTimeField(verbose_name='when')),
                ('actor_kind', models.CharField(choices=[('staff', 'Staff user'), ('customer', 'Customer'), ('token', 'API token'), ('system', 'System')], max_length=10, verbose_name='who (kind)')),
                ('actor_id', models.CharField(blank=True, max_length=64, verbose_name='who (id)')),
                ('actor_label', models.CharField(blank=True, max_length=200, verbose_name='who')),
                ('action', models.CharField(choices=[('view', 'Viewed'), ('list', 'Listed'), ('create', 'Created'), ('change', 'Changed'), ('merge', 'Merged'), ('download', 'Downloaded'), ('export', 'Exported'), ('erase', 'Erased'), ('decide', 'Decided'), ('override', 'Overrode a decision'), ('agree', 'Agreed a resolution'), ('sign_in', 'Signed in')], max_length=20, verbose_name='what')),
                ('object_type', models.CharField(blank=True, max_length=60, verbose_name='object type')),
                ('object_id', models.CharField(blank=True, max_length=64, verbose_name='object id')),
                ('case_reference', models.CharField(blank=True, max_length=40, verbose_name='case')),
                ('customer_pk', models.PositiveBigIntegerField(blank=True, null=True, verbose_name='customer id')),
                ('fields', models.JSONField(blank=True, default=list, verbose_name='personal fields')),
                ('detail', models.JSONField(blank=True, default=dict, verbose_name='detail')),
                ('ip_address', models.CharField(blank=True, max_length=64, verbose_name='IP address')),
                ('user_agent', models.CharField(blank=True, max_length=300, verbose_name='user agent')),
                ('channel', models.CharField(blank=True, max_length=20, verbose_name='channel')),
                ('prev_hash', models.CharField(max_length=64, verbose_name='previous hash')),
                ('hash', models.CharField(max_length=64, verbose_name='hash')),
            ],
            options={
                'verbose_name': 'audit entry',
                'verbose_name_plural': 'audit entries',
                'ordering': ['-seq'],
                'permissions': [('export_auditentry', 'Can export the audit log')],
                'default_permissions': ('view',),
                'indexes': [models.Index(fields=['case_reference', '-seq'], name='audit_by_case'), models.Index(fields=['customer_pk', '-seq'], name='audit_by_customer'), models.Index(fields=['at'], name='audit_by_time')],
            },
        ),
        migrations.RunPython(add_triggers, drop_triggers),
        migrations.RunPython(start_chain, migrations.RunPython.noop),
        migrations.RunPython(create_dpo_group, remove_dpo_group),
    ]
