"""Property tests of reading an email (concilia.integrations.mail.parsing.parse_email): whatever
bytes a mail server hands over, reading them never raises, and nothing it returns holds a NUL
character (PostgreSQL's text refuses it, and it means nothing in a complaint)."""

from __future__ import annotations

import base64
import quopri
from email.headerregistry import Address
from email.message import EmailMessage

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from concilia.integrations.mail.parsing import ParsedEmail, parse_email

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def assert_readable(parsed: ParsedEmail) -> None:
    """Every text the email channel stores or shows is a str without NUL."""
    texts = [
        parsed.from_address,
        parsed.from_name,
        parsed.subject,
        parsed.message_id,
        parsed.text,
        parsed.automatic,
        *parsed.to,
        *parsed.in_reply_to,
        *parsed.references,
        *parsed.bounced_ids,
        *parsed.problems,
    ]
    for part in parsed.attachments:
        texts += [part.name, part.content_type]
        assert isinstance(part.content, bytes)
    for text in texts:
        assert isinstance(text, str)
        assert "\x00" not in text, repr(text)


# --- any bytes at all ----------------------------------------------------------------------------


@SETTINGS
@given(st.binary(max_size=2000))
@example(b"")
@example(b"\x00" * 10)
@example(b"From: \x00@\x00\r\nSubject: \x00\r\n\r\n\x00")
def test_any_bytes_are_read_without_an_error(raw):
    assert_readable(parse_email(raw))


# --- structured but hostile email ------------------------------------------------------------------

# Header text: printable ASCII, Latin-1 and UTF-8 bytes, control characters and NULs.
header_bytes = st.one_of(
    st.binary(max_size=60),
    st.text(max_size=60).map(lambda t: t.encode("utf-8", errors="surrogatepass")),
    st.sampled_from(
        [
            b"=?utf-8?b?" + base64.b64encode("Devoluci\u00f3n \x00 pedido".encode()) + b"?=",
            b"=?iso-8859-1?q?Reclamaci=F3n=00?=",
            b"=?x-klingon?q?abc?=",
            b"=?utf-8?b?not base64!?=",
            b'"Ana \x00 P\xe9rez" <ana@example.org>',
            b"<id\x00@example.org>",
            b"<a@b> <c@d>\x00<e@f>",
            b"undisclosed-recipients:;",
            b"",
        ]
    ),
).map(lambda value: value.replace(b"\r", b"").replace(b"\n", b""))

charsets = st.sampled_from(
    ["utf-8", "iso-8859-1", "windows-1252", "us-ascii", "x-unknown", "utf-16", "", "utf-8\x00"]
)
transfer_encodings = st.sampled_from(["7bit", "8bit", "base64", "quoted-printable", "x-uuencode"])
content_types = st.sampled_from(
    [
        "text/plain",
        "text/html",
        "image/png",
        "application/pdf",
        "application/octet-stream",
        "message/rfc822",
        "text/rfc822-headers",
        "message/delivery-status",
        "multipart/mixed",
        "bogus",
        "",
    ]
)
file_names = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["fa\x00ctura.pdf", "=?utf-8?q?foto=00.png?=", "../../etc/passwd", "a\r\nb"]),
)


def _encoded(body: bytes, encoding: str) -> bytes:
    if encoding == "base64":
        return base64.encodebytes(body)
    if encoding == "quoted-printable":
        return quopri.encodestring(body)
    return body


@st.composite
def parts(draw, depth: int = 0) -> bytes:
    """One MIME part: its headers and body, or a multipart holding more parts."""
    kind = draw(content_types)
    charset = draw(charsets)
    encoding = draw(transfer_encodings)
    headers = [b"Content-Type: " + kind.encode() + b"; charset=" + charset.encode("latin-1")]
    if draw(st.booleans()):
        name = draw(file_names).encode("utf-8", errors="surrogatepass")
        headers.append(b'Content-Disposition: attachment; filename="' + name + b'"')
    headers.append(b"Content-Transfer-Encoding: " + encoding.encode())
    if kind.startswith("multipart") and depth < 2:
        boundary = b"b" + str(depth).encode()
        headers[0] = b"Content-Type: " + kind.encode() + b'; boundary="' + boundary + b'"'
        children = draw(st.lists(parts(depth + 1), max_size=3))
        body = b"".join(b"--" + boundary + b"\r\n" + child + b"\r\n" for child in children)
        if draw(st.booleans()):  # sometimes the closing boundary is missing
            body += b"--" + boundary + b"--\r\n"
        return b"\r\n".join(headers) + b"\r\n\r\n" + body
    body = draw(
        st.one_of(
            st.binary(max_size=300),
            st.text(max_size=300).map(lambda t: t.encode("utf-8", errors="surrogatepass")),
            st.just(b"<html><body><p>Hola\x00</p><script>x</script></body></html>"),
        )
    )
    return b"\r\n".join(headers) + b"\r\n\r\n" + _encoded(body, encoding)


@st.composite
def emails(draw) -> bytes:
    names = ["From", "Reply-To", "To", "Cc", "Subject", "Message-ID", "In-Reply-To", "References"]
    names += ["Return-Path", "Auto-Submitted", "Precedence", "X-Concilia-Loop", "MIME-Version"]
    chosen = draw(st.lists(st.sampled_from(names), max_size=len(names) + 3))
    headers = [name.encode() + b": " + draw(header_bytes) for name in chosen]
    return b"\r\n".join(headers) + b"\r\n" + draw(parts())


@SETTINGS
@given(emails())
def test_any_structured_email_is_read_without_an_error_and_without_nul(raw):
    assert_readable(parse_email(raw, own_addresses={"soporte@concilia.test"}))


# One line of text as people type it (NUL included, line breaks not: a header has one line).
one_line = st.text(
    alphabet=st.characters(exclude_categories=("Cs", "Cc", "Zl", "Zp"), include_characters="\x00"),
    max_size=60,
)


def words(text: str) -> str:
    """The text without NULs and whitespace: folding long headers moves spaces around."""
    return "".join(text.replace("\x00", "").split())


@settings(SETTINGS, max_examples=100)
@given(
    subject=one_line,
    sender=one_line,
    body=st.text(max_size=400),
    file_name=one_line.filter(lambda name: name.strip("\x00 ")),
)
def test_what_a_person_wrote_is_read_back_as_written(subject, sender, body, file_name):
    # Given a well-formed email built by Python's own composer from any text (NUL included)
    message = EmailMessage()
    message["From"] = Address(display_name=sender, username="lucia", domain="example.org")
    message["Subject"] = subject
    message["Message-ID"] = "<m1@example.org>"
    message.set_content(body)
    message.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename=file_name)
    # When it is read
    parsed = parse_email(message.as_bytes())
    # Then the sender's address, the subject, the text and the file arrive, without NULs
    assert_readable(parsed)
    assert parsed.from_address == "lucia@example.org"
    assert words(parsed.from_name) == words(sender)
    assert parsed.message_id == "<m1@example.org>"
    assert words(parsed.subject) == words(subject)
    assert words(parsed.text) == words(body)
    assert [(words(part.name), part.content) for part in parsed.attachments] == [
        (words(file_name), b"%PDF-1.4")
    ]
