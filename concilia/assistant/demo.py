"""The assistant's demo content: a small knowledge base and troubleshooting guides of a shop."""

from __future__ import annotations

from concilia.assistant.models import KnowledgeArticle, TroubleshootingGuide

ARTICLES = [
    (
        "¿Cuál es el horario de atención?",
        "What are your opening hours?",
        "Atendemos de lunes a viernes, de 9:00 a 18:00 (hora peninsular), salvo festivos. "
        "Este asistente responde a cualquier hora.",
        "We answer Monday to Friday, 9:00 to 18:00 (Madrid time), except public holidays. "
        "This assistant answers at any time.",
        "horario\nhorarios de apertura\na qué hora abrís\ncuándo atendéis\nopening times\n"
        "when are you open\nbusiness hours",
    ),
    (
        "¿Cuánto tiempo tengo para devolver un producto?",
        "How long do I have to return a product?",
        "Tienes 30 días naturales desde la entrega para devolver cualquier producto sin dar "
        "motivos, y 3 años de garantía legal si es defectuoso.",
        "You have 30 calendar days from delivery to return any product without giving a "
        "reason, and a 3-year legal guarantee if it is faulty.",
        "plazo de devolución\ncuántos días tengo para devolver\nventana de devolución\n"
        "return window\nreturn period\nhow many days to return",
    ),
    (
        "¿Cómo funcionan los reembolsos?",
        "How do refunds work?",
        "Devolvemos el dinero por el mismo medio de pago en un máximo de 14 días desde que "
        "aceptamos la devolución o la reclamación. Con tarjeta, el banco puede tardar de 3 a 5 "
        "días hábiles más en mostrarlo.",
        "We refund through the same payment method within 14 days of accepting the return or "
        "the complaint. On a card, the bank may take 3 to 5 more business days to show it.",
        "reembolso\ncuándo me devolvéis el dinero\ncómo me devuelven el dinero\n"
        "refund time\nwhen will i get my money back\nhow long does a refund take",
    ),
    (
        "¿Cuánto tarda el envío?",
        "How long does delivery take?",
        "Los pedidos salen en 24 horas laborables y llegan en 2 a 4 días laborables en la "
        "península; a Baleares, Canarias, Ceuta y Melilla, de 4 a 7.",
        "Orders leave within 24 business hours and arrive in 2 to 4 business days on the "
        "mainland; 4 to 7 to the islands, Ceuta and Melilla.",
        "plazo de entrega\ncuánto tarda en llegar\ndelivery time\nshipping time\n"
        "how long does shipping take",
    ),
]

GUIDES = [
    (
        "router",
        "Router wifi",
        "Wi-fi router",
        "Apaga el router, espera 30 segundos y vuelve a encenderlo.\n"
        "Comprueba que el cable de la fibra o del ADSL está bien conectado y que la luz de "
        "conexión está verde.\n"
        "Pulsa 10 segundos el botón de reinicio (reset) con un clip y configúralo de nuevo.",
        "Switch the router off, wait 30 seconds and switch it on again.\n"
        "Check that the fibre or ADSL cable is firmly plugged in and the connection light is "
        "green.\n"
        "Press the reset button with a paper clip for 10 seconds and set it up again.",
        "router, wifi, wi-fi, internet, conexión, connection",
    ),
    (
        "headphones",
        "Auriculares inalámbricos",
        "Wireless headphones",
        "Cárgalos al menos una hora con el cable original.\n"
        "Borra el emparejamiento en el Bluetooth del teléfono y vuelve a emparejarlos.\n"
        "Mantén pulsado el botón de encendido 15 segundos para restablecerlos.",
        "Charge them for at least an hour with the original cable.\n"
        "Forget them in your phone's Bluetooth settings and pair them again.\n"
        "Hold the power button for 15 seconds to reset them.",
        "auriculares, cascos, headphones, earbuds, bluetooth",
    ),
    (
        "kettle",
        "Hervidor eléctrico",
        "Electric kettle",
        "Comprueba que el enchufe funciona conectando otro aparato.\n"
        "Asegúrate de que la tapa está bien cerrada: si no, el hervidor no calienta.",
        "Check that the socket works by plugging in another appliance.\n"
        "Make sure the lid is fully closed: otherwise the kettle does not heat.",
        "hervidor, tetera, kettle",
    ),
]


def load_demo() -> bool:
    """Create the demo articles and guides once; True when they were created now."""
    if KnowledgeArticle.objects.exists() or TroubleshootingGuide.objects.exists():
        return False
    KnowledgeArticle.objects.bulk_create(
        KnowledgeArticle(
            question_es=q_es, question_en=q_en, answer_es=a_es, answer_en=a_en, phrasings=more
        )
        for q_es, q_en, a_es, a_en, more in ARTICLES
    )
    TroubleshootingGuide.objects.bulk_create(
        TroubleshootingGuide(
            code=code,
            product_es=p_es,
            product_en=p_en,
            steps_es=s_es,
            steps_en=s_en,
            keywords=words,
            position=position,
        )
        for position, (code, p_es, p_en, s_es, s_en, words) in enumerate(GUIDES)
    )
    return True
