"""Photos lose their metadata when stored: a customer's GPS location never reaches an agent.

Lucía photographs her broken parcel at home; her phone writes where (GPS), when and with what
camera into the JPEG. Whether she sends it through the web form or the chat, the stored file is
re-encoded from its pixels alone, still upright.
"""

from __future__ import annotations

import io
import uuid

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import ExifTags, Image, PngImagePlugin

from concilia.assistant.demo import load_demo
from concilia.assistant.models import ChatUpload
from concilia.assistant.tests.test_conversations import (
    answer_until_summary,
    begin,
    confirm,
    identify,
)
from concilia.cases.attachments import check_file
from concilia.cases.models import Attachment, Case
from conftest import PDF_BYTES

pytestmark = pytest.mark.django_db

LATITUDE = (40.0, 25.0, 7.5)
LONGITUDE = (3.0, 42.0, 19.25)


def phone_exif() -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "PhoneMaker"
    exif[ExifTags.Base.Model] = "Phone 15 Pro"
    exif[ExifTags.Base.DateTime] = "2026:03:14 18:02:11"
    exif[ExifTags.Base.Orientation] = 6  # held upright: the pixels are stored turned
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = LATITUDE
    gps[ExifTags.GPS.GPSLongitudeRef] = "W"
    gps[ExifTags.GPS.GPSLongitude] = LONGITUDE
    return exif


def parcel_photo() -> Image.Image:
    """64 x 32 pixels as stored by the phone: red, with the top-left corner blue."""
    photo = Image.new("RGB", (64, 32), (200, 30, 30))
    photo.paste((20, 40, 220), (0, 0, 16, 16))
    return photo


def phone_jpeg() -> bytes:
    buffer = io.BytesIO()
    parcel_photo().save(
        buffer, "JPEG", exif=phone_exif(), comment=b"Calle Mayor 1, Madrid", quality=85
    )
    return buffer.getvalue()


def assert_no_metadata(content: bytes) -> None:
    image = Image.open(io.BytesIO(content))
    exif = image.getexif()
    assert dict(exif) == {}
    assert exif.get_ifd(ExifTags.IFD.GPSInfo) == {}
    assert not {"exif", "xmp", "comment"} & set(image.info)
    for trace in (b"PhoneMaker", b"Phone 15 Pro", b"2026:03:14", b"Calle Mayor", b"Exif\x00"):
        assert trace not in content


def assert_upright(content: bytes) -> None:
    """Orientation 6 means 'turn 90° clockwise to view': the blue corner ends top-right."""
    image = Image.open(io.BytesIO(content)).convert("RGB")
    assert image.size == (32, 64)
    red, _green, blue = image.getpixel((28, 3))
    assert blue > 150 and red < 100
    red, _green, blue = image.getpixel((3, 60))
    assert red > 150 and blue < 100


def test_the_test_photo_really_carries_a_location():
    photo = Image.open(io.BytesIO(phone_jpeg()))
    gps = photo.getexif().get_ifd(ExifTags.IFD.GPSInfo)
    assert gps[ExifTags.GPS.GPSLatitude] == LATITUDE
    assert photo.getexif()[ExifTags.Base.Make] == "PhoneMaker"


def test_a_photo_sent_with_the_web_form_is_stored_without_its_location(client, complaint_data):
    photo = SimpleUploadedFile("parcel.jpg", phone_jpeg(), content_type="image/jpeg")

    response = client.post(
        "/complaints/new",
        {**complaint_data(), "submission_id": str(uuid.uuid4()), "attachments": [photo]},
        HTTP_ACCEPT_LANGUAGE="en",
    )

    assert response.status_code == 302
    attachment = Attachment.objects.get(case=Case.objects.get())
    stored = attachment.file.read()
    assert (attachment.original_name, attachment.content_type) == ("parcel.jpg", "image/jpeg")
    assert attachment.size == len(stored)
    assert_no_metadata(stored)
    assert_upright(stored)


def test_a_photo_sent_in_the_chat_is_stored_without_its_location(client):
    load_demo()
    chat = begin(client, "en")
    chat.say("My parcel arrived damaged, the box was crushed. Order 4471")

    chat.send_file("parcel.jpg", phone_jpeg())

    assert "parcel.jpg" in chat.answer
    assert_no_metadata(ChatUpload.objects.get().file.read())
    identify(chat, "en")
    answer_until_summary(chat)
    case = confirm(chat)
    stored = case.attachments.get().file.read()
    assert_no_metadata(stored)
    assert_upright(stored)


def test_png_webp_and_gif_lose_their_metadata_and_keep_their_pictures():
    photo = parcel_photo()
    text = PngImagePlugin.PngInfo()
    text.add_text("Location", "Calle Mayor 1, Madrid")
    png = io.BytesIO()
    photo.save(png, "PNG", pnginfo=text, exif=phone_exif())
    webp = io.BytesIO()
    photo.save(webp, "WEBP", exif=phone_exif(), xmp=b"<x:xmpmeta>PhoneMaker</x:xmpmeta>")
    gif = io.BytesIO()
    frames = [Image.new("RGB", (20, 20), colour) for colour in ("red", "green", "blue")]
    frames[0].save(
        gif,
        "GIF",
        save_all=True,
        append_images=frames[1:],
        duration=[100, 200, 300],
        loop=0,
        comment=b"Calle Mayor 1, Madrid",
    )

    # a page hidden after the PNG's end is dropped too
    checked_png = check_file("box.png", png.getvalue() + b"<script>alert(1)</script>")
    checked_webp = check_file("box.webp", webp.getvalue())
    checked_gif = check_file("box.gif", gif.getvalue())

    for checked in (checked_png, checked_webp):
        assert_no_metadata(checked.content)
        assert_upright(checked.content)
    assert b"Location" not in checked_png.content and b"<script>" not in checked_png.content
    assert b"xmpmeta" not in checked_webp.content
    assert b"Calle Mayor" not in checked_gif.content
    animation = Image.open(io.BytesIO(checked_gif.content))
    timing = []
    for number in range(animation.n_frames):
        animation.seek(number)
        timing.append((animation.info["duration"], animation.convert("RGB").getpixel((5, 5))))
    assert timing == [(100, (255, 0, 0)), (200, (0, 128, 0)), (300, (0, 0, 255))]
    assert checked_png.size == len(checked_png.content)


def test_a_jpeg_keeps_its_quality_tables_and_about_its_size():
    original = phone_jpeg()

    checked = check_file("parcel.jpg", original)

    assert Image.open(io.BytesIO(checked.content)).quantization == (
        Image.open(io.BytesIO(original)).quantization
    )
    assert len(checked.content) < len(original)  # the metadata is gone, the picture is not


def test_a_damaged_photo_is_refused_with_the_reason():
    damaged = phone_jpeg()[:300]  # the header and EXIF survive, the picture does not

    with pytest.raises(ValidationError) as error:
        check_file("parcel.jpg", damaged)

    assert error.value.code == "unreadable"
    assert "“parcel.jpg” could not be opened as an image" in error.value.messages[0]


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_an_image_too_large_in_pixels_is_refused_before_it_is_decoded():
    bomb = io.BytesIO()
    Image.new("1", (12000, 8000)).save(bomb, "PNG")  # 96 megapixels in a few kilobytes

    with pytest.raises(ValidationError) as error:
        check_file("huge.png", bomb.getvalue())

    assert error.value.code == "too_many_pixels"
    assert "96 megapixels" in error.value.messages[0]


def test_pdfs_and_heic_photos_are_kept_as_sent():
    # HEIC: Pillow cannot read it without a HEIF plug-in, so it is stored as sent (SECURITY.md).
    heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64

    assert check_file("factura.pdf", PDF_BYTES).content == PDF_BYTES
    assert check_file("foto.heic", heic).content == heic
