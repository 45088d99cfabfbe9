"""The categories every company starts with; administrators change them in the admin afterwards."""

from django.db import migrations

R, O, H = "required", "optional", "hidden"

CATEGORIES = [
    # code, Spanish, English, business days, order_number, purchase_date, amount
    ("billing_error", "Error de facturación", "Billing error", 10, O, R, R),
    ("refund", "Reembolso", "Refund", 10, R, R, R),
    ("return", "Devolución", "Return", 10, R, R, O),
    ("shipping_delay", "Retraso en la entrega", "Late delivery", 5, R, R, H),
    ("damaged_missing", "Envío dañado o incompleto", "Damaged or missing delivery", 5, R, O, O),
    ("technical_problem", "Problema técnico", "Technical problem", 10, O, O, H),
    ("staff_conduct", "Trato del personal", "Staff conduct", 10, H, H, H),
    ("other", "Otro", "Other", 10, O, O, O),
]


def seed(apps, schema_editor):
    Category = apps.get_model("cases", "Category")
    for position, (code, es, en, days, order, date, amount) in enumerate(CATEGORIES):
        Category.objects.update_or_create(
            code=code,
            defaults={
                "name_es": es,
                "name_en": en,
                "response_days": days,
                "position": position,
                "field_rules": {"order_number": order, "purchase_date": date, "amount": amount},
            },
        )


class Migration(migrations.Migration):
    dependencies = [("cases", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
