"""Attachments are judged by their content, not by their name."""

import pytest
from django.core.exceptions import ValidationError

from concilia.cases.attachments import check_file, clean_file_name
from conftest import EXE_BYTES, PDF_BYTES, PNG_BYTES


def test_real_pdf_and_png_are_accepted():
    pdf = check_file("factura.pdf", PDF_BYTES)
    assert (pdf.content_type, pdf.name, pdf.size) == (
        "application/pdf",
        "factura.pdf",
        len(PDF_BYTES),
    )
    png = check_file("foto", PNG_BYTES)
    assert (png.content_type, png.name) == ("image/png", "foto.png")


@pytest.mark.parametrize("name", ["foto.jpg", "invoice.pdf", "setup.exe", "nombre sin extension"])
def test_renamed_windows_program_is_refused(name):
    with pytest.raises(ValidationError) as error:
        check_file(name, EXE_BYTES)
    assert error.value.code == "executable"
    assert "Windows" in error.value.messages[0]


def test_linux_program_and_script_are_refused():
    for content in (b"\x7fELF\x02\x01\x01" + b"\x00" * 50, b"#!/bin/sh\nrm -rf /\n"):
        with pytest.raises(ValidationError) as error:
            check_file("photo.png", content)
        assert error.value.code == "executable"


def test_image_disguised_as_pdf_is_refused():
    with pytest.raises(ValidationError) as error:
        check_file("contrato.pdf", PNG_BYTES)
    assert error.value.code == "disguised"


def test_types_outside_the_allow_list_are_refused():
    zip_bytes = b"PK\x03\x04" + b"\x00" * 100
    with pytest.raises(ValidationError) as error:
        check_file("docs.zip", zip_bytes)
    assert error.value.code == "type_not_allowed"
    with pytest.raises(ValidationError):
        check_file("notes.txt", b"just some text")


def test_size_limits(settings):
    settings.CONCILIA_MAX_ATTACHMENT_BYTES = 1000
    with pytest.raises(ValidationError) as error:
        check_file("big.pdf", PDF_BYTES + b"0" * 1000)
    assert error.value.code == "too_large"
    with pytest.raises(ValidationError) as error:
        check_file("empty.pdf", b"")
    assert error.value.code == "empty"


def test_file_names_lose_paths_and_control_characters():
    assert clean_file_name("../../etc/passwd") == "passwd"
    assert clean_file_name("C:\\Users\\x\\foto\x00.jpg") == "foto.jpg"
    assert len(clean_file_name("a" * 300 + ".pdf")) == 255
