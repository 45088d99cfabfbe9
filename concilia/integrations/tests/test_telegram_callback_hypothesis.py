"""Property tests of the Telegram buttons' data (concilia.integrations.telegram.outbound): what a
button carries reads back as the message and choice it was made for, and any data a client sends
instead (Telegram passes it on unchecked) is either such a triple, small enough for a database
integer, or nothing, never an error."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from concilia.integrations.telegram.outbound import callback_data, parse_callback_data

ids = st.integers(min_value=0, max_value=2**63 - 1)


@settings(max_examples=300, deadline=None)
@given(ids, ids, st.integers(min_value=0, max_value=99))
def test_a_buttons_data_reads_back_as_its_message_and_choice(conversation_id, seq, index):
    assert parse_callback_data(callback_data(conversation_id, seq, index)) == (
        conversation_id,
        seq,
        index,
    )


@settings(max_examples=500, deadline=None)
@given(
    st.one_of(
        st.none(),
        st.text(max_size=64),
        st.lists(st.text(alphabet="0123456789\u00b2\u0661c:-+ ", max_size=25), max_size=5).map(
            ":".join
        ),
    )
)
@example("c:\u00b2:1:1")  # a digit to str.isdigit that int() refuses
@example("c:1:\u0661:0")  # an Arabic-Indic one that int() takes
@example("c:1:99999999999999999999999:0")  # past a database integer
@example("c:1:2:3:4")
def test_any_data_is_a_triple_of_database_integers_or_nothing(data):
    parsed = parse_callback_data(data)
    if parsed is None:
        return
    assert len(parsed) == 3
    assert all(isinstance(n, int) and 0 <= n < 2**63 for n in parsed)
    assert data == callback_data(*parsed)  # only what a button of ours would carry
