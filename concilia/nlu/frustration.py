"""How frustrated a customer sounds (0 calm .. 1 furious), with the reasons an agent can read.

Each signal found in a message is a `Reason` with a documented weight; the score combines them as
independent pieces of evidence, 1 - Π(1 - weight), so one strong signal counts for a lot, more
signals push towards 1 without ever passing it, and a message with no signal scores 0.

Weights (chosen so a plain complaint stays under 0.3, one strong signal lands around 0.45-0.6,
and two or three together pass 0.8):
    insult ("idiotas", "estafadores", "scammers", "useless")             0.60
    very angry ("muy enfadado", "very angry", "estoy furioso")            0.60
    threat (abogado, OCU, consumo, denuncia, "lawyer", "report you")      0.45
    outrage ("vergüenza", "harto", "ridiculous", "unacceptable")          0.45
    repeated contact ("tercera vez", "third time", "nadie me responde")   0.40
    angry ("enfadado", "angry", "cabreado", "annoyed")                    0.35
    angry emoji (😡 🤬 😤 👿 💢 🖕)                                        0.35
    shouting (most letters in capitals, at least 12 letters)              0.35
    repeated marks ("!!!" 0.30, "!!" 0.15, "???" or "?!" 0.15)
    again ("otra vez", "de nuevo", "again", "still")                      0.15
Both languages' lexicons are read whatever the detected language (customers mix them); a word
right after a negation ("no estoy enfadado", "not angry") does not count.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from concilia.nlu.lexicon import fold


@dataclass(frozen=True)
class Reason:
    """One signal of frustration: what it is, the words that showed it, and its weight."""

    # insult, very_angry, threat, outrage, repeated_contact, angry, angry_emoji, shouting, marks, again
    signal: str
    evidence: str
    weight: float


# Comma-separated phrases matched on folded text (lower case, no accents) at word boundaries;
# "*" ends a stem: "estafador*" is estafador, estafadores, estafadora...
_LEXICONS: tuple[tuple[str, float, str], ...] = (
    (
        "insult",
        0.60,
        "idiota*, imbecil*, estupido*, inutil*, incompetente*, estafador*, ladron*, ladrones, "
        "sinverguenza*, chorizos, gilipolla*, mierda, joder, hostia*, cabron*, payasos, timador*, "
        "capullo*, mentiroso*, idiot*, stupid, useless, incompetent, scammer*, scam, thieves, "
        "thief, crooks, morons, moron, clowns, shit, fuck*, bullshit, crap, bastards, liars, wtf, "
        "ffs",
    ),
    (
        "very_angry",
        0.60,
        "muy enfadad*, muy cabread*, muy molest*, muy indignad*, furios*, enfurecid*, furious, "
        "very angry, so angry, really angry, extremely angry, livid, fuming",
    ),
    (
        "threat",
        0.45,
        "abogado*, ocu, facua, a consumo, en consumo, ante consumo, oficina de consumo, "
        "oficina del consumidor, omic, denuncia*, denunciar*, demandar*, os demando, les demando, "
        "juzgado*, tribunal*, hoja de reclamaciones, reclamacion oficial, redes sociales, "
        "lawyer*, attorney, solicitor, sue, suing, legal action, small claims, trading standards, "
        "ombudsman, report you, reporting you, chargeback, bbb, social media",
    ),
    (
        "outrage",
        0.45,
        "verguenza, vergonzoso*, harto*, hasta las narices, indignante, indignad*, inaceptable, "
        "intolerable, inadmisible, ridiculo*, lamentable, pesimo*, penoso, de risa, "
        "tomadura de pelo, nefasto*, horrible, ya esta bien, basta ya, ridiculous, "
        "unacceptable, disgrace*, disgusting, outrage*, appalling, pathetic, shameful, terrible, "
        "awful, worst, fed up, sick of, sick and tired, a joke, enough is enough",
    ),
    (
        "repeated_contact",
        0.40,
        "tercera vez, cuarta vez, quinta vez, enesima vez, mil veces, varias veces, "
        "ya os he dicho, ya les he dicho, ya lo he dicho, nadie me responde, nadie me contesta, "
        "nadie contesta, sin respuesta, no me contestais, no me responden, no contestan, "
        "llevo semanas, llevo dias, llevo un mes, third time, fourth time, fifth time, "
        "several times, many times, told you already, already told you, nobody answers, "
        "no one answers, no response, no reply, still waiting, for weeks, weeks now",
    ),
    (
        "angry",
        0.35,
        "enfadad*, cabread*, molesto, molesta, me da rabia, indignacion, decepcionad*, "
        "disgustad*, frustrad*, angry, annoyed, upset, frustrated, mad, disappointed, "
        "not happy, unhappy",
    ),
    ("again", 0.15, "otra vez, de nuevo, todavia, aun no, again, still"),
)
# Words that cancel the next lexicon word when they come just before it ("no estoy enfadado").
_NEGATION = re.compile(r"(?:\bno|\bnot|\bnada|\bni|n't|\bnunca|\bnever)\s+(?:\w+\s+){0,2}$")
# "no" is itself part of some phrases ("no response"), so a negation only cancels these signals.
_NEGATABLE = frozenset({"angry", "very_angry", "outrage"})


def _compile(lexicon: str) -> re.Pattern[str]:
    phrases = [phrase.strip() for phrase in lexicon.split(",")]
    parts = (
        re.escape(p[:-1]).replace(r"\ ", r"\s+") + r"\w*"
        if p.endswith("*")
        else re.escape(p).replace(r"\ ", r"\s+")
        for p in phrases
    )
    return re.compile(r"\b(?:" + "|".join(sorted(parts, key=len, reverse=True)) + r")\b")


_PATTERNS = tuple((signal, weight, _compile(phrases)) for signal, weight, phrases in _LEXICONS)
_EXCLAMATIONS = re.compile(r"!{2,}")
_ANGRY_EMOJI = re.compile(
    "[\U0001f620\U0001f621\U0001f624\U0001f47f\U0001f92c\U0001f4a2\U0001f595]+"
)
_ANGRY_EMOJI_WEIGHT = 0.35
_QUESTIONS = re.compile(r"\?{3,}|[?!]*(?:\?!|!\?)[?!]*")
_LETTERS = re.compile(r"[^\W\d_]")
_SHOUTING_MIN_LETTERS = 12
_SHOUTING_SHARE = 0.7
_SHOUTING_WEIGHT = 0.35


def reasons(text: str, language: str = "es") -> list[Reason]:
    """The signals of frustration in `text`, strongest first; never raises."""
    if not isinstance(text, str) or not text.strip():
        return []
    folded = fold(text)
    found: list[Reason] = []
    seen_spans: list[tuple[int, int]] = []
    for signal, weight, pattern in _PATTERNS:
        for match in pattern.finditer(folded):
            span = match.span()
            if any(span[0] < end and start < span[1] for start, end in seen_spans):
                continue  # "muy enfadado" is very_angry, not also angry
            if signal in _NEGATABLE and _NEGATION.search(folded, 0, span[0]):
                continue
            seen_spans.append(span)
            found.append(Reason(signal, text[span[0] : span[1]], weight))
            break  # one reason per signal: five insults are not five times as angry
    if emoji := _ANGRY_EMOJI.search(text):
        found.append(Reason("angry_emoji", emoji.group(), _ANGRY_EMOJI_WEIGHT))
    found.extend(_shouting(text))
    found.extend(_marks(text))
    return sorted(found, key=lambda reason: -reason.weight)


def score(text: str, language: str = "es") -> float:
    """0 calm .. 1 furious: 1 - Π(1 - weight) over the reasons found."""
    calm = 1.0
    for reason in reasons(text, language):
        calm *= 1.0 - reason.weight
    return round(1.0 - calm, 3)


def _shouting(text: str) -> list[Reason]:
    letters = _LETTERS.findall(text)
    if len(letters) < _SHOUTING_MIN_LETTERS:
        return []
    capitals = sum(letter.isupper() for letter in letters)
    if capitals / len(letters) < _SHOUTING_SHARE:
        return []
    return [
        Reason("shouting", f"{capitals} of {len(letters)} letters in capitals", _SHOUTING_WEIGHT)
    ]


def _marks(text: str) -> list[Reason]:
    found: list[Reason] = []
    exclamations = max((len(m.group()) for m in _EXCLAMATIONS.finditer(text)), default=0)
    if exclamations >= 3:
        found.append(Reason("marks", "!" * exclamations, 0.30))
    elif exclamations == 2:
        found.append(Reason("marks", "!!", 0.15))
    if question := _QUESTIONS.search(text):
        found.append(Reason("marks", question.group(), 0.15))
    return found
