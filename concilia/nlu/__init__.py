"""Language understanding: language, kind and category, frustration, dialogue act and entities.

`understand(text)` is the one entry point; engines (the local scikit-learn models, or a language
model behind an OpenAI-compatible endpoint) are chosen in settings. Pure Python and scikit-learn:
nothing here knows about cases or conversations.
"""

from __future__ import annotations

from typing import Any

from concilia.nlu.types import UNKNOWN, Entity, Money, Prediction, Understanding


def understand(text: str, **options: Any) -> Understanding:
    """Read one message (see concilia.nlu.understanding.understand)."""
    # Imported on first use: the models load only in processes that read messages.
    from concilia.nlu.understanding import understand as run

    return run(text, **options)


__all__ = ["UNKNOWN", "Entity", "Money", "Prediction", "Understanding", "understand"]
