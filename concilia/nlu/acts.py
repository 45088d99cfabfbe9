"""What the customer is doing with one message (asking for a person, confirming, correcting...).

Bilingual rules on folded text (lower case, no accents, so "pásame" and "pasame" are one).
Precedence, first match wins:
    1. request_human — a person on request is a legal duty (Spain's 2025 customer-service law),
       so it beats everything, even inside a complaint or after "no,". It needs a request frame
       ("quiero hablar con", "pásame con", "can I talk to", "agent please", a message that is
       only "operador"), or, for typos, a word one letter from a person noun after a request verb
       ("hablar con una perosna"). Declining ("no quiero hablar con un agente", "don't transfer
       me") cancels it, "no consigo hablar con una persona" does not; "no quiero hablar con
       nadie" and "the agent was rude" are not requests.
    2. cancel — a short message that drops the conversation ("déjalo", "never mind", "stop");
       "cancel my order" is a request about an order, so inform.
    3. correct — a correction marker ("quería decir", "I meant", "me he equivocado",
       "actually it was"), "no"/"wrong" followed by new content ("no, el pedido es 4471"), or
       "sí, pero…"/"yes, but…" with new data.
    4. deny — "no", "nope", "incorrecto", "that's wrong" with nothing new after.
    5. affirm — "sí", "vale", "correcto", "yes", "that's right"... on their own or before a short
       remainder; "si" without accent followed by a clause is "if" ("si no me devolvéis...").
    6. thank, 7. greet — only when the message is mostly thanks or a greeting ("hola, me
       cobraron dos veces" is inform).
    8. question — "?" or "¿", an interrogative opening ("cuál es el plazo", "how do refunds
       work"), or "quiero saber" / "I'd like to know".
    9. inform — everything else.
"""

from __future__ import annotations

import re

from concilia.nlu.lexicon import fold, words, wordset
from concilia.nlu.types import Act


def detect(text: str, language: str = "es") -> Act:
    """The act of one message; `language` is informative only (both languages are read)."""
    if not isinstance(text, str):
        return "inform"
    folded = " ".join(fold(text).replace("\u2019", "'").split())
    if not folded:
        return "inform"
    if is_request_human(folded):
        return "request_human"
    tokens = words(folded)
    if _is_cancel(folded, tokens):
        return "cancel"
    if _is_correction(folded, tokens):
        return "correct"
    if _is_deny(folded, tokens):
        return "deny"
    if _is_affirm(folded, tokens, accented_yes=_ACCENTED_YES.match(text.lower()) is not None):
        return "affirm"
    if _is_mostly(tokens, _THANKS_RE, folded):
        return "thank"
    if _is_mostly(tokens, _GREETING_RE, folded):
        return "greet"
    if _is_question(folded, " ".join(text.lower().replace("\u2019", "'").split())):
        return "question"
    return "inform"


# ---------------------------------------------------------------------------- request_human

# Who the customer wants: a person, not the bot (with common typos: "umano", "ajente", "operadr").
_PERSON = (
    r"(?:(?:un|una|a|an|some|alguna|algun|the|your|vuestro|vuestra|su|tu|el|la)\s+)?"
    r"(?:(?:ser\s+)?h?umano|persona(?:s)?(?:\s+(?:real|humana|de\s+verdad|fisica|de\s+carne\s+y\s+hueso))?"
    r"|a?gente(?:s)?(?:\s+humano|\s+real)?|ajente|agent(?:e|s)?|operador(?:a|es)?|operadr\w*|operario|"
    r"teleoperador(?:a)?|asesor(?:a)?|gestor(?:a)?|encargad[oa]|responsable|supervisor(?:a)?|"
    r"empleado|trabajador|alguien(?:\s+(?:real|de\s+verdad|humano|del\s+equipo|de\s+atencion\s+al\s+cliente))?|"
    r"(?:real\s+)?(?:human(?:\s+being)?|person|people|agent|operator|representative|rep|"
    r"someone|somebody|anyone|anybody|manager|supervisor|staff(?:\s+member)?|employee)"
    r"(?:\s+(?:real|in\s+person))?|live\s+(?:agent|person|chat|support)|"
    r"(?:atencion|servicio)\s+al\s+cliente(?:\s+(?:real|humana|de\s+verdad))?|"
    r"customer\s+(?:service|support|care)(?:\s+(?:agent|rep|representative|person))?)\b"
)
# Ways of asking to be put through (verbs kept in the present/imperative: "hablé con una persona"
# and "I spoke to an agent" tell what happened, they do not ask).
_REQUEST_FRAMES = (
    # Spanish: talk/contact with …, put me through to …, I want/need …
    r"\b(?:h?ablar|h?abla(?:r|me)?|conversar|contactar|comunicar(?:me)?|chatear)\s+(?:directamente\s+)?con\s+"
    + _PERSON,
    r"\b(?:pasa(?:me|dme|s|is)|pase(?:me)?|ponga(?:me)?|pon(?:me|edme|es|eis)|p[oa]sar(?:me)?|poner(?:me)?|"
    r"comunica(?:me)?|deriva(?:me)?|derivar(?:me)?|transfiere(?:me)?|transferir(?:me)?|"
    r"conecta(?:me)?|conectar(?:me)?)\s+(?:directamente\s+)?(?:con|a|al)\s+" + _PERSON,
    r"\b(?:quiero|quisiera|necesito|exijo|pido|solicito|prefiero|me\s+gustaria|dame|deme|"
    r"podria|puede|podeis|pueden)\s+(?:que\s+me\s+atienda\s+|que\s+me\s+llame\s+|"
    r"tener\s+|ser\s+atendid[oa]\s+por\s+|que\s+me\s+atienda\s+)?" + _PERSON,
    r"\bque\s+me\s+(?:atienda|llame|conteste|responda)\s+" + _PERSON,
    r"\batender(?:me)?\s+" + _PERSON,
    r"\b(?:ayuda|atencion)\s+(?:de|por\s+parte\s+de)\s+" + _PERSON,
    r"\b(?:hablar|chatear)\s+con\s+(?:una\s+)?persona\b",
    # English: talk/speak to …, put me through to …, I want/need …
    r"\b(?:talk|speak|chat)\s+(?:to|with)\s+" + _PERSON,
    r"\b(?:connect|transfer|put|pass|forward|escalate)\s+(?:me|this)\s+(?:through\s+)?(?:to|with)\s+"
    + _PERSON,
    r"\b(?:want|need|give\s+me|get\s+me|request|demand|prefer|help\s+from|"
    r"(?:can|could|may)\s+i\s+(?:get|have))\s+"
    r"(?:to\s+have\s+)?" + _PERSON,
    r"\b(?:is\s+there|are\s+there)\s+(?:a|an|any)\s+(?:real\s+)?(?:human|person|people|agent)\b",
)
_REQUEST_RE = re.compile("|".join(f"(?:{frame})" for frame in _REQUEST_FRAMES))
# A message that is only the person asked for ("operador", "agent please", "persona real").
_BARE_PERSON_RE = re.compile(
    r"^(?:(?:hola|hello|hi|hey|oye|please|por\s+favor|porfa|pls|plz|ya|con|with|to)[\s,.!]*)*"
    + _PERSON
    + r"(?:[\s,.!]*(?:please|por\s+favor|porfa|pls|plz|now|ya|ahora|ahora\s+mismo|right\s+now))*[\s.!?]*$"
)
# Declining a person in the same clause cancels the request ("no quiero hablar con un agente",
# "don't transfer me to an agent"); "no consigo hablar con una persona" still asks for one.
_NEGATED = re.compile(
    r"(?:\b(?:no|nunca|jamas|ni)\s+(?:me\s+|te\s+|lo\s+)?(?:quiero|quisiera|necesito|hace\s+falta|"
    r"deseo|pido|interesa|pases|pase|pongas|ponga|transfieras|derives)|"
    r"(?:\bdon'?t|\bdo\s+not|\bnever|\bno\s+need\s+to|\bnot)\s+(?:to\s+)?(?:want|need|wanna|"
    r"transfer|put|connect|pass|talk|speak|chat))\b"
)
_CLAUSE_END = re.compile(r"[,.;:!?]")


def is_request_human(folded: str) -> bool:
    """Whether a folded message asks for a person (exposed for the assistant's handover tests)."""
    # "no, quiero hablar con una persona": the comma ends the clause "no" negates.
    for match in _REQUEST_RE.finditer(folded):
        clause_start = max(
            (m.end() for m in _CLAUSE_END.finditer(folded, 0, match.start())), default=0
        )
        if not _NEGATED.search(folded, clause_start, match.end()):
            return True
    return bool(_BARE_PERSON_RE.match(folded)) or _misspelt_request(folded)


# Typos the patterns above do not list ("hablar con una perosna", "talk to a humna"): after a
# request verb in the same clause, a word one edit (or one swap) away from a person noun.
_FUZZY_CUE = re.compile(
    r"\b(?:h?ablar|pasa(?:me|dme|s)|pon(?:me|es)|quiero|necesito|talk|speak|want|need|transfer|"
    r"connect)\b[^,.;:!?]*"
)
_FUZZY_NOUNS = (
    "persona",
    "humano",
    "agente",
    "operador",
    "operadora",
    "asesor",
    "human",
    "person",
    "operator",
    "representative",
    "supervisor",
    "encargado",
)
# Real words one edit from a noun: "personal" data, "gente" (people), "agenda"...
_FUZZY_EXCLUDED = wordset("personal personas humana humanos gente agenda urgente asesora human")
_FUZZY_MIN_LENGTH = 5


def _misspelt_request(folded: str) -> bool:
    for cue in _FUZZY_CUE.finditer(folded):
        if _NEGATED.search(folded, max(0, cue.start() - 30), cue.end()):
            continue
        for word in words(cue.group())[1:]:
            if (
                len(word) >= _FUZZY_MIN_LENGTH
                and word not in _FUZZY_EXCLUDED
                and any(_one_edit_apart(word, noun) for noun in _FUZZY_NOUNS)
            ):
                return True
    return False


def _one_edit_apart(word: str, target: str) -> bool:
    """Whether `word` is `target` with one letter changed, added, removed, or two swapped."""
    if word == target or abs(len(word) - len(target)) > 1:
        return False
    if len(word) == len(target):
        diffs = [i for i, (a, b) in enumerate(zip(word, target, strict=True)) if a != b]
        return len(diffs) == 1 or (
            len(diffs) == 2
            and diffs[1] == diffs[0] + 1
            and word[diffs[0]] == target[diffs[1]]
            and word[diffs[1]] == target[diffs[0]]
        )
    shorter, longer = sorted((word, target), key=len)
    return any(longer[:i] + longer[i + 1 :] == shorter for i in range(len(longer)))


# ---------------------------------------------------------------------------- cancel

_CANCEL_PHRASES = re.compile(
    r"\b(?:dejalo|dejalo\s+estar|olvidalo|olvidate|olvida\s+lo|no\s+importa(?:\s+ya)?|"
    r"ya\s+no\s+hace\s+falta|never\s*mind|forget\s+(?:it|about\s+it)|doesn'?t\s+matter|"
    r"don'?t\s+bother)\b"
)
_CANCEL_ALONE = wordset(
    "cancel cancelar cancela cancelalo stop para parar basta salir exit quit abort terminar fin"
)
_POLITE = wordset(
    "por favor porfa gracias muchas please thanks thank you pls ya ahora now just the it todo",
    "mejor better ok vale okay bueno well so pues entonces then",
)
_SHORT = 6  # words: a cancel/greeting/thanks message longer than this is about something else


def _is_cancel(folded: str, tokens: list[str]) -> bool:
    if not tokens or len(tokens) > _SHORT:
        return False
    if _CANCEL_PHRASES.search(folded):
        return not folded.startswith("no importa si")
    return any(t in _CANCEL_ALONE for t in tokens) and all(
        t in _CANCEL_ALONE or t in _POLITE for t in tokens
    )


# ---------------------------------------------------------------------------- correct / deny

_CORRECTION_MARKERS = re.compile(
    r"^(?:si|yes|yeah|yep|vale|ok),?\s+(?:pero|but)\s+(?=.*(?:\d|@|\b(?:es|era|fue|was|is)\b))|"
    r"\b(?:queria\s+decir|quise\s+decir|quiero\s+decir|me\s+he\s+equivocado|me\s+equivoque|"
    r"me\s+he\s+confundido|me\s+confundi|mejor\s+dicho|rectifico|corrijo|correccion|error\s+mio|"
    r"fallo\s+mio|perdon,?\s+(?:es|era|fue|son|eran|el|la|los|las|no\s+es)|"
    r"perdona,?\s+(?:es|era|fue|el|la)|en\s+realidad\s+(?:es|era|fue|son|eran|el|la)|"
    r"no\s+(?:es|era|fue)\s+(?:el\s+|la\s+)?\S*\d\S*,?\s+(?:es|era|fue|sino)|"
    r"i\s+meant|my\s+(?:mistake|bad)|typo|correction|i\s+made\s+a\s+mistake|"
    r"i\s+was\s+wrong|actually,?\s+(?:it|it's|its|the|my|that)\b|"
    r"sorry,?\s+(?:it|it's|its|the|i\s+meant|that\s+should)\b|"
    r"(?:it|it'?s|it\s+is|it\s+was)\s+not\s+\S*\d\S*,?\s+(?:it'?s|it\s+(?:is|was)|but)|"
    r"not\s+\S*\d\S*\s+but\s+\S)"
)
_DENY_OPENERS = re.compile(
    r"^(?:no+|nop|nope|nah|negativo|incorrecto|falso|mal|wrong|incorrect|"
    r"(?:claro|por\s+supuesto|desde\s+luego)\s+que\s+no|of\s+course\s+not|"
    r"eso\s+no\s+es\s+(?:asi|correcto|cierto|verdad)|no\s+es\s+(?:asi|correcto|cierto|verdad)|"
    r"that'?s\s+(?:wrong|not\s+right|not\s+correct|incorrect|not\s+it|not\s+true)|"
    r"that\s+is\s+(?:wrong|not\s+right|incorrect)|not\s+(?:right|correct|really|quite)|"
    r"no\s+(?:lo\s+es|it\s+isn'?t|it'?s\s+not|that'?s\s+wrong)|para\s+nada|not\s+at\s+all|"
    r"de\s+ninguna\s+manera|no\s+way|en\s+absoluto)\b"
)
# After "no," these words mean the customer goes on with new data, i.e. a correction.
_NEW_CONTENT = re.compile(
    r"\d|@|\b(?:es|era|fue|son|eran|el|la|los|las|mi|it|it's|its|the|my|was|is|were|"
    r"se\s+llama|i\s+said|dije|he\s+dicho)\b"
)
_DENY_TAIL = wordset(
    "no gracias thanks thank you por favor eso es no lo es asi correcto cierto verdad that's",
    "not right correct it isn't is it's wrong incorrect true nada en absoluto sorry lo siento",
    "para de ninguna manera way nope nah at all que eso esto quiero lo necesito hace falta",
    "i don't want need",
)


def _is_correction(folded: str, tokens: list[str]) -> bool:
    if _CORRECTION_MARKERS.search(folded):
        return True
    opener = _DENY_OPENERS.match(folded)
    if not opener:
        return False
    after = folded[opener.end() :]
    rest = after.lstrip(" ,.;:!-")
    if not rest or all(t in _DENY_TAIL for t in words(rest)):
        return False
    # "no, el pedido es 4471", "nope, it was 30 euros", "wrong, my email is ana@…"
    separated = after[:1] in {",", ".", ";", ":", "-", "!"}
    goes_on = _GOES_ON.match(after) is not None
    return (separated or goes_on) and _NEW_CONTENT.search(rest) is not None


_GOES_ON = re.compile(r"\s+(?:es|era|fue|it\s+(?:is|was)|it'?s)\b")


def _is_deny(folded: str, tokens: list[str]) -> bool:
    opener = _DENY_OPENERS.match(folded)
    if not opener:
        return False
    rest = folded[opener.end() :]
    if rest and rest[0].isalnum():
        return False  # "no me ha llegado" tells, "not received" tells
    return all(t in _DENY_TAIL for t in words(rest))


# ---------------------------------------------------------------------------- affirm

_AFFIRM_OPENERS = re.compile(
    r"^(?:(?:claro|por\s+supuesto|desde\s+luego)\s+que\s+si|sure\s+thing|yes+|"
    r"si|sip|sii+|vale|ok|okay|okey|oki|de\s+acuerdo|correcto|exacto|exactamente|claro|"
    r"perfecto|eso\s+es|asi\s+es|efectivamente|afirmativo|por\s+supuesto|desde\s+luego|venga|dale|"
    r"genial|bien|esta\s+bien|me\s+parece\s+bien|yes|yep|yeah|yup|ya|sure|correct|right|"
    r"that'?s\s+(?:right|correct|it|fine|good|true)|that\s+is\s+(?:right|correct)|"
    r"exactly|indeed|absolutely|of\s+course|sounds\s+good|confirm(?:ed)?|fine|alright|"
    r"all\s+right|good|great|perfect|i\s+do|it\s+is|lo\s+es|confirmo|acepto|i\s+agree|agreed)\b"
)
_AFFIRM_TAIL = wordset(
    "si vale ok okay claro correcto exacto perfecto gracias muchas por favor yes please thanks",
    "thank you sure right that's it is correct exactly fine great good perfect eso es asi",
    "todo bien de acuerdo adelante go ahead confirmo confirmed lo the absolutely",
)
_AFFIRM_REST_WORDS = 4  # "sí, ese es mi pedido" confirms; a longer sentence says something else
_ACCENTED_YES = re.compile(r"^[\s¡\"']*(?:sí|yes)\b")


def _is_affirm(folded: str, tokens: list[str], *, accented_yes: bool) -> bool:
    opener = _AFFIRM_OPENERS.match(folded)
    if not opener:
        return False
    rest = folded[opener.end() :]
    rest_tokens = words(rest)
    if "?" in rest or "¿" in rest:
        return False  # "ok, ¿y cuándo llega?" asks
    if all(t in _AFFIRM_TAIL for t in rest_tokens):
        return True
    if len(rest_tokens) > _AFFIRM_REST_WORDS:
        return False
    # "sí, ese es mi pedido" and "sí quiero" confirm; "si no me devolvéis..." is "if", and
    # "good morning" or "right now I want..." are not answers.
    return rest[:1] in {",", ".", "!", ";", ":", "-"} or accented_yes


# ---------------------------------------------------------------------------- thank / greet

_THANKS_RE = re.compile(
    r"\b(?:muchas\s+gracias|mil\s+gracias|gracias|te\s+lo\s+agradezco|se\s+lo\s+agradezco|"
    r"os\s+lo\s+agradezco|muy\s+amable|thank\s+you(?:\s+(?:so|very)\s+much)?|thanks(?:\s+a\s+lot)?|"
    r"thx|ty|cheers|much\s+appreciated|appreciate\s+it)\b"
)
_GREETING_RE = re.compile(
    r"\b(?:hola|holi|buenas(?:\s+(?:tardes|noches))?|buenos\s+dias|saludos|hey|hi|hello|hiya|"
    r"good\s+(?:morning|afternoon|evening)|que\s+tal|how\s+are\s+you)\b"
)
_FILLER_WORDS = wordset(
    "por favor muy muchas mucho so much very a lot todo todos all equipo team de nuevo again",
    "buen dia hola hi hello hey ok vale perfecto genial great perfect bien good there you",
    "que tal how are amable kind eres sois it i appreciate adios bye goodbye chao hasta luego mate",
)


def _is_mostly(tokens: list[str], phrase: re.Pattern[str], folded: str) -> bool:
    if not tokens or len(tokens) > _SHORT:
        return False
    if not phrase.search(folded):
        return False
    remainder = words(phrase.sub(" ", folded))
    return all(t in _FILLER_WORDS for t in remainder)


# ---------------------------------------------------------------------------- question

# Greetings and fillers a question may open with ("hola, ¿cuál es...", "quick question: how...").
_QUESTION_PREFIX = re.compile(
    r"^(?:(?:hola|buenas|buenos\s+dias|hi|hello|hey|perdon|disculpa|disculpe|oye|una\s+pregunta|"
    r"pregunta|question|quick\s+question|excuse\s+me|sorry|y|and|pero|but|entonces|so)[,:\s]+)*"
)
# Openers that ask even without "?" ("cual es el plazo", "how do refunds work"). Unaccented
# "que", "como", "cuando", "donde" also open statements ("cuando llegó estaba roto"), so they
# count only with their accent; English wh-words count only before a verb that asks.
_ASKING_OPENER = re.compile(
    r"(?:cual|cuales|cuanto|cuanta|cuantos|cuantas|quien|quienes|por\s+que|"
    r"puedo|puedes|puede|pueden|podria|podrias|podeis|se\s+puede|teneis|tienen|es\s+posible|"
    r"(?:what|when|where|who)(?:'s|\s+(?:is|are|was|were|will|would|do|does|did|can|could|"
    r"should|shall|may|might|has|have|happens|happened|time|days|kind|type|options|documents))|"
    r"why|which|how(?:'s|\s+(?:do|does|did|can|could|long|much|many|is|are|will|would|should|"
    r"soon|often|to))|can|could|would|will|do|does|did|is|are|should|shall|may)\b"
)
# "qué vergüenza", "qué mal servicio", "cómo es posible" without marks exclaim, they do not ask.
_EXCLAMATION_WORDS = re.compile(
    r"\s+(?:verguenza|asco|pena|desastre|horror|mal|malo|mala|cachondeo|tomadura|robo|timo|"
    r"rabia|lastima|poca|poco|fuerte|broma|barbaridad|vergonzoso|penoso|triste|cara|caradura|"
    r"servicio|empresa|gente|es\s+posible|se\s+atreven)\b"
)
_ACCENTED_INTERROGATIVE = re.compile(
    r"(?:qué|cuál|cuáles|cuándo|cómo|dónde|adónde|cuánto|cuánta|cuántos|cuántas|quién|quiénes)\b"
)
_QUESTION_PHRASES = re.compile(
    r"^me\s+(?:puede|puedes|pueden|podeis|podria|podrias|podrian)\b|"
    r"\b(?:(?:quiero|queria|quisiera|me\s+gustaria|necesito|querria)\s+saber|"
    r"(?:puede|puedes|pueden|podeis|podria|podrias|podrian)\s+(?:decirme|indicarme|explicarme)|"
    r"me\s+(?:puede|puedes|pueden|podeis|podria|podrias|podrian)\s+(?:decir|indicar|explicar|"
    r"informar|confirmar|aclarar)|"
    r"i'?d\s+like\s+to\s+know|i\s+want\s+to\s+know|i\s+need\s+to\s+know|"
    r"i\s+was\s+wondering|i\s+wonder|tell\s+me\s+(?:how|what|when|where|why|if|whether)|"
    r"do\s+you\s+know)\b"
)


def _is_question(folded: str, lowered: str) -> bool:
    if "?" in folded or "¿" in folded:
        return True
    if "!" in folded or "¡" in folded:
        return False  # "¡qué vergüenza!", "how dare you!" exclaim
    if _QUESTION_PHRASES.search(folded):
        return True
    prefix = _QUESTION_PREFIX.match(folded)
    position = prefix.end() if prefix else 0
    if _ASKING_OPENER.match(folded, position):
        return True
    # fold() keeps offsets, so a position in the folded text is the same in `lowered`.
    accented = _ACCENTED_INTERROGATIVE.match(lowered, position)
    if len(lowered) != len(folded) or accented is None:
        return False
    return _EXCLAMATION_WORDS.match(folded, accented.end()) is None
