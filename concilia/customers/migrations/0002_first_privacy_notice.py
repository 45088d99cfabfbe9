"""The first privacy notice, so that a fresh install can take complaints; edit it in the admin."""

import datetime as dt

from django.db import migrations

ES = """Responsable: la empresa que atiende tu caso a través de Concilia.
Qué datos tratamos: tu nombre, email, teléfono (si nos lo das), los datos del pedido que pide cada tipo de caso, lo que nos cuentas y los archivos que adjuntas.
Para qué: únicamente para gestionar y resolver tu caso y responderte. No los usamos para publicidad.
Base legal: tu consentimiento y nuestra obligación legal de atender reclamaciones.
Cuánto tiempo: mientras el caso esté abierto y después durante 5 años, el plazo de conservación que exige la ley; luego se borran o anonimizan.
Quién los ve: solo el personal de atención al cliente que lleva tu caso.
Tus derechos: puedes pedir acceso, rectificación, supresión, limitación, portabilidad u oponerte escribiendo al delegado de protección de datos de la empresa, e indicar tu número de referencia. También puedes reclamar ante la Agencia Española de Protección de Datos."""

EN = """Controller: the company handling your case through Concilia.
What we process: your name, email, phone (if you give it), the order data your kind of case needs, what you tell us and the files you attach.
What for: only to handle and resolve your case and to answer you. We do not use it for advertising.
Legal basis: your consent and our legal duty to handle complaints.
How long: while the case is open and then for 5 years, the retention period the law requires; after that it is deleted or anonymised.
Who sees it: only the customer service staff handling your case.
Your rights: you may ask for access, rectification, erasure, restriction, portability or object by writing to the company's data protection officer, quoting your reference number. You may also complain to the data protection authority."""


def seed(apps, schema_editor):
    PrivacyNotice = apps.get_model("customers", "PrivacyNotice")
    PrivacyNotice.objects.get_or_create(
        version="2026-11-1",
        defaults={"body_es": ES, "body_en": EN,
                  "published_at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC)},
    )


class Migration(migrations.Migration):
    dependencies = [("customers", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
