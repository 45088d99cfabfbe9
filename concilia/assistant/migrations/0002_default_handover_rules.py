"""The hand-over rules every company starts with: staff conduct always goes to a person."""

from django.db import migrations


def seed(apps, schema_editor):
    HandoverRules = apps.get_model("assistant", "HandoverRules")
    Category = apps.get_model("cases", "Category")
    rules = HandoverRules.objects.first() or HandoverRules.objects.create()
    rules.person_categories.add(*Category.objects.filter(code="staff_conduct"))


class Migration(migrations.Migration):
    dependencies = [("assistant", "0001_initial"), ("cases", "0002_seed_categories")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
