"""The review queue and the labels that train the NLU.

Given conversations the assistant handled badly (a thumbs-down, an abandoned chat), Sara the
supervisor finds them in the queue, says what a message meant, and the next `concilia nlu train`
learns it.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid

import pytest
from django.core.management import call_command
from django.utils import timezone, translation

from concilia.assistant.models import Author, ChatMessage, Conversation, ConversationStatus
from concilia.feedback.models import ReviewItem, ReviewLabel, ReviewStatus
from concilia.feedback.queries import review_examples
from concilia.nlu.classifier import forget_models, load_model

pytestmark = pytest.mark.django_db

# A message nothing in the training file looks like: only a reviewer's label can teach it.
ODD = "the blue parrot ate my voucher code"


def conversation_with(*messages: tuple[str, str, int | None], **fields) -> Conversation:
    """A conversation with these (author, body, rating) messages."""
    conversation = Conversation.objects.create(
        token_digest=uuid.uuid4().hex, language="en", state={"consent": {}}, **fields
    )
    for seq, (author, body, rating) in enumerate(messages, start=1):
        ChatMessage.objects.create(
            conversation=conversation, seq=seq, author=author, body=body, rating=rating
        )
    return conversation


@pytest.fixture
def thumbs_down():
    return conversation_with(
        (Author.CUSTOMER, ODD, None),
        (Author.ASSISTANT, "Here is how returns work: ...", -1),
    )


def queue_ids(client) -> str:
    response = client.get("/helpdesk/feedback/", headers={"accept-language": "en"})
    assert response.status_code == 200
    return response.content.decode()


def test_the_queue_lists_thumbs_down_and_abandoned_conversations_only(
    supervisor_client, thumbs_down
):
    long_ago = timezone.now() - dt.timedelta(hours=2)
    abandoned = conversation_with((Author.CUSTOMER, "hello?", None), last_customer_at=long_ago)
    just_now = conversation_with((Author.CUSTOMER, "hello?", None), last_customer_at=timezone.now())
    happy = conversation_with(
        (Author.CUSTOMER, "thanks", None),
        (Author.ASSISTANT, "You are welcome", 1),
        status=ConversationStatus.CLOSED,
    )

    page = queue_ids(supervisor_client)

    assert f'data-conversation="{thumbs_down.public_id}"' in page
    assert f'data-conversation="{abandoned.public_id}"' in page
    assert f'data-conversation="{just_now.public_id}"' not in page  # still typing, maybe
    assert f'data-conversation="{happy.public_id}"' not in page
    assert page.count('data-reason="thumbs_down"') == 1
    assert page.count('data-reason="abandoned"') == 1


def label_form(conversation: Conversation, **fields) -> dict[str, str]:
    customer = conversation.messages.filter(author=Author.CUSTOMER).order_by("seq")
    data = {"form-TOTAL_FORMS": str(customer.count()), "form-INITIAL_FORMS": "0", "save": "1"}
    for i, message in enumerate(customer):
        data[f"form-{i}-message"] = str(message.pk)
        data[f"form-{i}-text"] = message.body
    data.update({f"form-0-{name}": value for name, value in fields.items()})
    return data


def write_examples(path) -> None:
    """A small training file: two labels, twelve examples each, nothing about parrots."""
    rows = [(f"my refund for order {n} has not arrived", "refund") for n in range(12)]
    rows += [(f"the parcel {n} is late, still not delivered", "shipping_delay") for n in range(12)]
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows(rows)


def train(path, *extra: str) -> str:
    out = io.StringIO()
    with translation.override("en"):
        call_command("nlu", "train", str(path), "--model", "categories", *extra, stdout=out)
    forget_models()
    return out.getvalue()


def predicted(text: str) -> str:
    return load_model("categories").predict_many([text])[0].best


def test_a_label_leaves_the_queue_and_the_next_training_learns_it(
    supervisor_client, sara, thumbs_down, settings, tmp_path
):
    settings.NLU_MODEL_DIR = tmp_path / "models"
    data = tmp_path / "examples.csv"
    write_examples(data)
    train(data)
    assert predicted(ODD) != "refund"

    # Sara says the message was a refund request (and a question), with the code it named.
    response = supervisor_client.post(
        f"/helpdesk/feedback/conversations/{thumbs_down.public_id}/",
        label_form(thumbs_down, category="refund", kind="question", slots="voucher: blue"),
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    review = ReviewItem.objects.get(conversation=thumbs_down)
    assert review.status == ReviewStatus.LABELLED
    assert review.reasons == ["thumbs_down"]
    assert review.reviewer == sara
    assert sorted(review.labels.values_list("model", "label")) == [
        ("categories", "refund"),
        ("kinds", "question"),
    ]
    assert f'data-conversation="{thumbs_down.public_id}"' not in queue_ids(supervisor_client)

    output = train(data)

    assert "Reviewers' labels: 1 (1 new texts, 0 relabelled, 0 already there)." in output
    assert "Before/after on the same" in output
    assert predicted(ODD) == "refund"
    # Kept out of training, the label teaches nothing again.
    label = ReviewLabel.objects.get(model="categories")
    response = supervisor_client.post(
        f"/helpdesk/feedback/labels/{label.pk}/exclude", {"excluded": "1"}
    )
    assert response.status_code == 302
    assert review_examples("categories") == []
    output = train(data)
    assert "Reviewers' labels: 0 (0 new texts" in output
    assert predicted(ODD) != "refund"


def test_training_without_reviews_and_relabelled_duplicates(supervisor_client, tmp_path, settings):
    settings.NLU_MODEL_DIR = tmp_path / "models"
    data = tmp_path / "examples.csv"
    write_examples(data)
    # Two reviewers label the same text (up to case and spaces); one relabels a file's text.
    for text, label in (
        (ODD, "shipping_delay"),
        ("  THE BLUE parrot ate my  voucher code ", "refund"),
        ("my refund for order 3 has not arrived", "shipping_delay"),
    ):
        conversation = conversation_with(
            (Author.CUSTOMER, text, None), (Author.ASSISTANT, "Sorry?", -1)
        )
        response = supervisor_client.post(
            f"/helpdesk/feedback/conversations/{conversation.public_id}/",
            label_form(conversation, category=label),
        )
        assert response.status_code == 302

    assert sorted(review_examples("categories")) == [
        ("THE BLUE parrot ate my  voucher code", "refund"),  # the latest label stands
        ("my refund for order 3 has not arrived", "shipping_delay"),
    ]
    output = train(data)
    assert "Reviewers' labels: 2 (1 new texts, 1 relabelled, 0 already there)." in output
    assert "Training 'categories' on 25 examples" in output
    output = train(data, "--without-reviews")
    assert "Reviewers' labels" not in output
    assert "Training 'categories' on 24 examples" in output


def test_nothing_to_learn_closes_the_review_without_labels(supervisor_client, thumbs_down):
    response = supervisor_client.post(
        f"/helpdesk/feedback/conversations/{thumbs_down.public_id}/",
        {"form-TOTAL_FORMS": "0", "form-INITIAL_FORMS": "0", "nothing": "1"},
    )
    assert response.status_code == 302
    review = ReviewItem.objects.get(conversation=thumbs_down)
    assert review.status == ReviewStatus.DISMISSED
    assert not review.labels.exists()
    # A second reviewer posting the old page is told, not given an error page.
    response = supervisor_client.post(
        f"/helpdesk/feedback/conversations/{thumbs_down.public_id}/",
        label_form(thumbs_down, category="refund"),
        headers={"accept-language": "en"},
        follow=True,
    )
    assert response.status_code == 200
    assert ReviewLabel.objects.count() == 0


def test_a_bad_slot_line_is_a_clear_error(supervisor_client, thumbs_down):
    response = supervisor_client.post(
        f"/helpdesk/feedback/conversations/{thumbs_down.public_id}/",
        label_form(thumbs_down, category="refund", slots="just words"),
        headers={"accept-language": "en"},
    )
    assert response.status_code == 400
    assert "Write each slot as name: value" in response.content.decode()
    assert not ReviewItem.objects.exists()


def test_agents_and_strangers_may_not_review(client, ana, thumbs_down):
    url = f"/helpdesk/feedback/conversations/{thumbs_down.public_id}/"
    assert client.get(url).status_code == 302  # to the sign-in page
    client.force_login(ana)
    for path in ("/helpdesk/feedback/", url, "/helpdesk/feedback/unanswered/"):
        assert client.get(path).status_code == 403
    assert client.post(url, label_form(thumbs_down, category="refund")).status_code == 403
    assert not ReviewItem.objects.exists()


def test_handed_over_conversations_are_listed_in_a_constant_number_of_queries(
    supervisor_client, open_case, django_assert_max_num_queries
):
    from concilia.assistant.models import Handover

    def handed_over():
        case = open_case()
        conversation = conversation_with((Author.CUSTOMER, "a person, please", None), case=case)
        Handover.objects.create(conversation=conversation, case=case, reason="requested")
        return conversation

    first = handed_over()
    with django_assert_max_num_queries(20) as few:
        page = queue_ids(supervisor_client)
    assert f'data-conversation="{first.public_id}"' in page
    assert page.count('data-reason="handover"') == 1
    for _ in range(5):
        handed_over()
    with django_assert_max_num_queries(len(few.captured_queries)):
        page = queue_ids(supervisor_client)
    assert page.count('data-reason="handover"') == 6
