"""Spanish or English for short chat messages, from function words, Spanish letters and word endings.

A general detector (langdetect, lingua, fastText) is built for paragraphs and many languages; for
two languages and three-word chat messages a weighted list of unambiguous function and chat words
is faster (a few microseconds) and, on messages like "no, the order is 4471", more accurate.
Words that exist in both languages ("no", "me", "he", "a", "ok", "real") count for neither.
"""

from __future__ import annotations

import re

from concilia.nlu.lexicon import fold, words, wordset

# Evidence needed before the confidence reaches its ceiling; below it the hint keeps more weight.
_FULL_EVIDENCE = 3.0
# A text without evidence ("ok", "4471", an email) answers the hint with this confidence.
_NO_EVIDENCE_CONFIDENCE = 0.2
# The hint counts as this much evidence for its language (enough to settle a tie, no more).
_HINT_WEIGHT = 0.4

_SPANISH = wordset(
    "el la los las lo del al un una unos unas de en y que por para con sin sobre entre hasta "
    "desde es son soy eres somos esta estan estoy estas este esto eso esa ese fue era ser estar "
    "hay ha han hemos tengo tiene tienen tenia muy mas pero porque cuando donde como cual "
    "cuales quien que nada nadie algo alguien todo todos ya tambien todavia aun nunca siempre "
    "mi mis tu tus su sus nuestro nuestra os les le se nos yo ella ellos usted ustedes vosotros "
    "hola buenas buenos dias gracias favor vale quiero quisiera necesito puedo puede podria "
    "hablar llamar llego llegado recibido recibi pedido paquete envio devolucion reembolso "
    "dinero cobraron cobrado ayer hoy anteayer hace semana mes veces vez dos tres cuatro cinco "
    "persona humano agente operador cliente atencion tienda producto roto rota mal bien donde "
    "ningun ninguna otra otro sino pues entonces aqui alli ahora despues antes dejalo olvidalo "
    "correcto exacto claro perdon tambien quiero tengo estoy cuanto cuanta cuantos plazo "
    "harto verguenza enfadado ni ningun segun mediante tras durante contra perfecto genial te",
    "pago pague compre factura ayuda saber queria llega esperando espero sigo funciona si",
    "cancelar llamadme llamame llamar correo telefono numero dia importe cobro cargo",
)
_ENGLISH = wordset(
    "i the and of to in is are was were be been being it its it's this that these those with "
    "for on at by from about into over after before what which who whom whose when where why "
    "how can could would should will shall may might must do does did don't doesn't didn't "
    "can't won't isn't wasn't aren't i'm i've i'd i'll you're you we they she them our "
    "your their my mine yours hello hi hey thanks thank please yes yeah yep nope want need "
    "talk speak someone somebody anyone person human agent representative order parcel "
    "package refund money charged twice still yet never always again already today yesterday "
    "ago days week weeks month last got get received arrived delivered item broken wrong "
    "right just but not any some all there here have had am an or if than then so very "
    "much many more most other another one two three four five number help customer service "
    "cancel forget mind stop actually meant ridiculous unacceptable angry perfect great",
    "awesome sorry wait waiting late invoice bought paid charge call phone email back",
    "tell",
)
# Spanish-only letters and marks: strong evidence even in a one-word message ("sí", "¿cuánto?").
_SPANISH_MARKS = re.compile(r"[ñÑ¿¡áéíóúÁÉÍÓÚüÜ]")
_SPANISH_MARK_WEIGHT = 1.5
# Emails and web addresses say nothing about the language the customer writes in.
_ADDRESSES = re.compile(r"[^\s@]+@\S+|https?://\S+|www\.\S+")
# The first thousand characters say which language a message is in; more only costs time.
_READ_AT_MOST = 1000
_ENDING_WEIGHT = 0.5
_SPANISH_ENDINGS = ("cion", "ciones", "mente", "ado", "ada", "ados", "ido", "ida", "aron", "amos")
_ENGLISH_ENDINGS = ("ing", "ly", "ness", "ed", "'s", "'t")
# Spellings one language uses and the other almost never ("llega"; "the", "which", "back", "week").
_SPANISH_SPELLING = re.compile(r"^ll|rr[aeiou]")
_ENGLISH_SPELLING = re.compile(r"th|^wh|ck|sh|w|k|ee|oo|ou")


def detect(text: str, hint: str | None = None) -> tuple[str, float]:
    """Return ("es" | "en", confidence 0..1); without evidence, the hint (or "es") with low confidence."""
    default = hint if hint in ("es", "en") else "es"
    if not isinstance(text, str) or not text:
        return default, _NO_EVIDENCE_CONFIDENCE
    spanish, english = _evidence(text)
    if spanish == english == 0:
        return default, _NO_EVIDENCE_CONFIDENCE
    if hint == "es":
        spanish += _HINT_WEIGHT
    elif hint == "en":
        english += _HINT_WEIGHT
    if spanish == english:
        return default, 0.5
    winner = "es" if spanish > english else "en"
    total = spanish + english
    margin = abs(spanish - english) / total
    strength = min(1.0, total / _FULL_EVIDENCE)
    return winner, round(0.5 + 0.5 * margin * strength, 3)


def _evidence(text: str) -> tuple[float, float]:
    text = text[:_READ_AT_MOST]
    if "@" in text or "www." in text or "://" in text:
        text = _ADDRESSES.sub(" ", text)
    spanish = _SPANISH_MARK_WEIGHT if _SPANISH_MARKS.search(text) else 0.0
    english = 0.0
    for word in words(fold(text)):
        if word in _SPANISH:
            spanish += 1.0
        elif word in _ENGLISH:
            english += 1.0
        elif len(word) > 4 and word.endswith(_SPANISH_ENDINGS):
            spanish += _ENDING_WEIGHT
        elif len(word) > 4 and word.endswith(_ENGLISH_ENDINGS):
            english += _ENDING_WEIGHT
        elif len(word) > 2 and _SPANISH_SPELLING.search(word):
            spanish += _ENDING_WEIGHT
        elif len(word) > 2 and _ENGLISH_SPELLING.search(word):
            english += _ENDING_WEIGHT
    return spanish, english
