"""Reading an email as it arrives, whatever state it is in: broken MIME, unknown charsets,
missing headers. Nothing here raises on a message's content; what cannot be read is reported.

Also recognises the mail that must never open a case: automatic replies (RFC 3834 and the
headers of the common mail programs), delivery reports (RFC 3464) and our own mail coming back.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import re
from dataclasses import dataclass, field
from email.message import Message
from email.utils import getaddresses, parseaddr
from html.parser import HTMLParser

# Header Concilia puts on every email it sends; seeing it on incoming mail means a loop.
LOOP_HEADER = "X-Concilia-Loop"

AUTO_REPLY = "auto_reply"
BOUNCE = "bounce"
OWN = "own"

_AUTO_SUBJECT = re.compile(
    r"^\s*(auto(matic)?[ -]?(reply|response)|autoreply|out of (the )?office|"
    r"respuesta autom[aá]tica|fuera de la oficina|ausente|auto:)",
    re.IGNORECASE,
)
_DAEMONS = ("mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon")
_QUOTE_HEADER = re.compile(
    r"^\s*(on\b.{0,200}\bwrote:|el\b.{0,200}\bescribi[oó]:|-{2,}\s*(original message|mensaje original)"
    r"\s*-{2,}|_{10,}\s*$|(from|de):\s.+\n\s*(sent|enviado|date|fecha):)",
    re.IGNORECASE | re.MULTILINE,
)


@dataclass(frozen=True)
class Part:
    """An attached file as found in the message (not yet checked)."""

    name: str
    content_type: str
    content: bytes


@dataclass
class ParsedEmail:
    from_address: str = ""
    from_name: str = ""
    to: list[str] = field(default_factory=list)
    subject: str = ""
    message_id: str = ""
    in_reply_to: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    text: str = ""
    attachments: list[Part] = field(default_factory=list)
    # AUTO_REPLY, BOUNCE or OWN for mail that must open nothing; "" for a person's mail.
    automatic: str = ""
    # Message-IDs of the mail a delivery report is about (from its returned headers).
    bounced_ids: list[str] = field(default_factory=list)
    # What could not be read: shown to the agents, never a reason to drop the message.
    problems: list[str] = field(default_factory=list)

    @property
    def thread_ids(self) -> list[str]:
        """The Message-IDs this message answers, most specific first."""
        return [*self.in_reply_to, *reversed(self.references)]


def dedupe_key(raw: bytes, message_id: str) -> str:
    """One key per message however many mailboxes or retries bring it."""
    basis = message_id.encode() if message_id else raw
    return hashlib.sha256(basis).hexdigest()


def _header(message: Message, name: str) -> str:
    """A header as text; a header the parser cannot decode is read raw rather than lost."""
    try:
        value = message.get(name)
    except Exception:
        value = None
        for key, raw in message.raw_items():
            if key.lower() == name.lower():
                value = raw
                break
    if value is None:
        return ""
    # NUL characters cannot be stored in PostgreSQL's text, nor mean anything in an address.
    return " ".join(str(value).replace("\x00", "").split())


def _ids(value: str) -> list[str]:
    return re.findall(r"<[^<>\s]+>", value)


def decode_text(payload: bytes, declared: str | None, problems: list[str]) -> str:
    """Text in its declared charset if it really is; else UTF-8; else Windows-1252, which is
    what mail that lies about its charset is nearly always written in."""
    for charset in (declared, "utf-8"):
        if not charset:
            continue
        try:
            return payload.decode(charset)
        except UnicodeDecodeError:
            continue
        except (LookupError, ValueError):  # ValueError: a charset name holding a NUL
            problems.append(f"unknown charset {charset!r}")
    return payload.decode("cp1252", errors="replace")


def _text_of(part: Message, problems: list[str]) -> str:
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        payload = None
    if not isinstance(payload, bytes):
        payload = str(part.get_payload()).encode("utf-8", errors="replace")
    return decode_text(payload, part.get_content_charset(), problems)


class _HTMLText(HTMLParser):
    """The readable text of an HTML body: blocks become lines, scripts and styles vanish."""

    _BLOCKS = frozenset(
        [
            "p",
            "div",
            "br",
            "li",
            "tr",
            "h1",
            "h2",
            "h3",
            "h4",
            "h5",
            "h6",
            "blockquote",
            "pre",
            "table",
            "section",
            "article",
        ]
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in ("script", "style", "head"):
            self._skip += 1
        elif tag in self._BLOCKS:
            self.out.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "head"):
            self._skip = max(0, self._skip - 1)
        elif tag in self._BLOCKS:
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.out.append(data)


def html_to_text(html: str) -> str:
    parser = _HTMLText()
    try:
        parser.feed(html)
        parser.close()
    except Exception:
        return re.sub(r"<[^>]*>", " ", html)
    lines = (" ".join(line.split()) for line in "".join(parser.out).splitlines())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def new_text(text: str) -> str:
    """What the sender wrote in a reply, without the quoted earlier messages under it."""
    match = _QUOTE_HEADER.search(text)
    kept = text[: match.start()] if match and match.start() > 0 else text
    lines = kept.rstrip().splitlines()
    while lines and (lines[-1].startswith(">") or not lines[-1].strip()):
        lines.pop()
    result = "\n".join(lines).strip()
    return result or text.strip()


def _body_part(message: Message) -> Message | None:
    try:
        body = message.get_body(preferencelist=("plain", "html"))  # type: ignore[attr-defined]
    except Exception:
        body = None
    if body is None:
        # No declared text part: the first text/* leaf, or nothing.
        for part in message.walk():
            if not part.is_multipart() and part.get_content_maintype() == "text":
                return part
    return body


def _body(body: Message | None, problems: list[str]) -> str:
    if body is None:
        return ""
    text = _text_of(body, problems)
    if body.get_content_subtype() == "html":
        text = html_to_text(text)
    return text.replace("\r\n", "\n").strip()


def _attachments(message: Message, body_text_part: object, problems: list[str]) -> list[Part]:
    files: list[Part] = []
    for part in message.walk():
        if part.is_multipart() or part is body_text_part:
            continue
        if part.get_content_type() == "message/rfc822":
            continue
        try:
            name = part.get_filename() or ""
        except Exception:
            name = ""
        disposition = (part.get_content_disposition() or "").lower()
        maintype = part.get_content_maintype()
        if not name and disposition != "attachment" and maintype == "text":
            continue  # an alternative body, not a file
        if not name and maintype not in ("image", "application") and disposition != "attachment":
            continue
        try:
            content = part.get_payload(decode=True) or b""
        except Exception:
            problems.append(f"attachment {name or '?'} could not be decoded")
            continue
        if not isinstance(content, bytes):
            content = str(content).encode("utf-8", errors="replace")
        files.append(
            Part(
                name=name.replace("\x00", "") or "attachment",
                content_type=part.get_content_type(),
                content=content,
            )
        )
    return files


def _automatic(message: Message, parsed: ParsedEmail, own_addresses: set[str]) -> str:
    if _header(message, LOOP_HEADER):
        return OWN
    if parsed.from_address and parsed.from_address in own_addresses:
        return OWN
    content_type = message.get_content_type()
    report_type = (
        (message.get_param("report-type") or "") if content_type == "multipart/report" else ""
    )
    local = parsed.from_address.partition("@")[0]
    return_path = _header(message, "Return-Path")
    if str(report_type).lower() == "delivery-status" or local in _DAEMONS or return_path == "<>":
        return BOUNCE
    auto_submitted = _header(message, "Auto-Submitted").lower()
    if auto_submitted and auto_submitted != "no":
        return AUTO_REPLY
    for name in ("X-Autoreply", "X-Autorespond", "X-Autoresponder", "X-Auto-Reply"):
        if _header(message, name):
            return AUTO_REPLY
    if _header(message, "Precedence").lower() in ("bulk", "junk", "auto_reply", "list"):
        return AUTO_REPLY
    suppress = _header(message, "X-Auto-Response-Suppress").lower()
    if "oof" in suppress or "autoreply" in suppress or suppress == "all":
        return AUTO_REPLY
    if _AUTO_SUBJECT.match(parsed.subject):
        return AUTO_REPLY
    return ""


def _bounced_ids(message: Message) -> list[str]:
    """The Message-IDs of our mail a delivery report returns (its message/rfc822 or
    text/rfc822-headers part)."""
    found: list[str] = []
    for part in message.walk():
        kind = part.get_content_type()
        if kind == "message/rfc822":
            payload = part.get_payload()
            inner = payload[0] if isinstance(payload, list) and payload else None
            if isinstance(inner, Message):
                found += _ids(_header(inner, "Message-ID"))
        elif kind == "text/rfc822-headers":
            headers = email.message_from_bytes(part.get_payload(decode=True) or b"")
            found += _ids(_header(headers, "Message-ID"))
    return found


def parse_email(raw: bytes, *, own_addresses: set[str] = frozenset()) -> ParsedEmail:  # type: ignore[assignment]
    """Read a raw RFC 5322 message; never raises on its content."""
    parsed = ParsedEmail()
    try:
        message: Message = email.message_from_bytes(raw, policy=email.policy.default)
    except Exception:
        message = email.message_from_bytes(raw, policy=email.policy.compat32)
        parsed.problems.append("the message's structure could not be read")
    for defect in getattr(message, "defects", [])[:5]:
        parsed.problems.append(type(defect).__name__)
    name, address = parseaddr(_header(message, "Reply-To") or _header(message, "From"))
    if "@" not in address:
        name, address = parseaddr(_header(message, "From"))
    parsed.from_name = name.strip()
    parsed.from_address = address.strip().lower() if "@" in address else ""
    parsed.to = [
        a.lower()
        for _n, a in getaddresses([_header(message, "To"), _header(message, "Cc")])
        if "@" in a
    ]
    parsed.subject = _header(message, "Subject")[:500]
    parsed.message_id = (_ids(_header(message, "Message-ID")) or [""])[0][:250]
    parsed.in_reply_to = _ids(_header(message, "In-Reply-To"))
    parsed.references = _ids(_header(message, "References"))
    parsed.automatic = _automatic(message, parsed, set(own_addresses))
    if parsed.automatic == BOUNCE:
        parsed.bounced_ids = _bounced_ids(message)
    body_part = _body_part(message)
    parsed.text = _body(body_part, parsed.problems)
    parsed.attachments = _attachments(message, body_part, parsed.problems)
    # NUL characters cannot be stored in PostgreSQL's text, nor mean anything in a complaint.
    for name in ("subject", "from_name", "text", "message_id"):
        setattr(parsed, name, getattr(parsed, name).replace("\x00", ""))
    return parsed
