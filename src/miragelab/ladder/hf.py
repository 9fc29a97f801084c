"""Hugging Face checkpoint folders for ladder models, written without transformers.

A folder holds ``config.json`` (a ``GPT2Config``), ``model.safetensors`` (the
state dict; the head is tied to ``wte`` and not stored), ``tokenizer.json``
(a character-level ``WordLevel`` tokenizer in the ``tokenizers`` format),
``tokenizer_config.json``, ``special_tokens_map.json`` and
``generation_config.json``. It loads offline with
``AutoModelForCausalLM.from_pretrained(path)`` and
``AutoTokenizer.from_pretrained(path)``. Only ``torch``/``safetensors`` are
needed to write or read it here; transformers is needed only to use it there.

Folders are written to a temporary sibling and renamed into place, so a
folder that exists is complete.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from safetensors.torch import load_file, save_file

from miragelab.atomic import as_created
from miragelab.ladder.model import GPTConfig, TinyGPT
from miragelab.ladder.tasks import EOS, EOS_ID, PAD, PAD_ID, VOCAB

WEIGHTS = "model.safetensors"


def gpt2_config(cfg: GPTConfig, extra: dict | None = None) -> dict:
    """``config.json`` contents for ``GPT2LMHeadModel``."""
    return {
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "vocab_size": cfg.vocab_size,
        "n_positions": cfg.block_size,
        "n_ctx": cfg.block_size,
        "n_embd": cfg.n_embd,
        "n_layer": cfg.n_layer,
        "n_head": cfg.n_head,
        "n_inner": None,
        "activation_function": "gelu_new",
        "resid_pdrop": 0.0,
        "embd_pdrop": 0.0,
        "attn_pdrop": 0.0,
        "layer_norm_epsilon": cfg.layer_norm_epsilon,
        "initializer_range": 0.02,
        "scale_attn_weights": True,
        "scale_attn_by_inverse_layer_idx": False,
        "reorder_and_upcast_attn": False,
        "tie_word_embeddings": True,
        "use_cache": True,
        "bos_token_id": EOS_ID,
        "eos_token_id": EOS_ID,
        "pad_token_id": PAD_ID,
        "torch_dtype": "float32",
        "miragelab": extra or {},
    }


def tokenizer_json() -> dict:
    """A ``tokenizers`` file: one token per character, ``<pad>``/``<eos>`` special."""
    special = [
        {
            "id": i,
            "content": s,
            "single_word": False,
            "lstrip": False,
            "rstrip": False,
            "normalized": False,
            "special": True,
        }
        for i, s in enumerate(VOCAB)
        if s in (PAD, EOS)
    ]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": special,
        "normalizer": None,
        "pre_tokenizer": {
            "type": "Split",
            "pattern": {"Regex": "."},
            "behavior": "Isolated",
            "invert": False,
        },
        "post_processor": None,
        "decoder": {"type": "Fuse"},
        "model": {
            "type": "WordLevel",
            "vocab": {s: i for i, s in enumerate(VOCAB)},
            "unk_token": "<unk>",
        },
    }


def _tokenizer_files() -> dict[str, dict]:
    specials = {"eos_token": EOS, "bos_token": EOS, "pad_token": PAD}
    return {
        "tokenizer.json": tokenizer_json(),
        "tokenizer_config.json": {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "model_max_length": 1 << 30,
            "clean_up_tokenization_spaces": False,
            "padding_side": "left",
            **specials,
        },
        "special_tokens_map.json": specials,
    }


def export_hf(model: TinyGPT, path: str | os.PathLike[str], extra: dict | None = None) -> Path:
    """Write ``model`` as a Hugging Face checkpoint folder at ``path`` (atomically)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        tensors = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
        save_file(tensors, tmp / WEIGHTS, metadata={"format": "pt"})
        files = {"config.json": gpt2_config(model.config, extra), **_tokenizer_files()}
        files["generation_config.json"] = {
            "bos_token_id": EOS_ID,
            "eos_token_id": EOS_ID,
            "pad_token_id": PAD_ID,
        }
        for name, content in files.items():
            (tmp / name).write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        for written in tmp.iterdir():  # safetensors writes its file 0600
            as_created(written)
        as_created(tmp, folder=True)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def load_hf(path: str | os.PathLike[str]) -> TinyGPT:
    """Read a folder written by :func:`export_hf` back into a :class:`TinyGPT`."""
    folder = Path(path)
    conf = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    cfg = GPTConfig(
        n_layer=conf["n_layer"],
        n_head=conf["n_head"],
        n_embd=conf["n_embd"],
        vocab_size=conf["vocab_size"],
        block_size=conf["n_positions"],
        layer_norm_epsilon=conf["layer_norm_epsilon"],
    )
    model = TinyGPT(cfg)
    model.load_state_dict(load_file(folder / WEIGHTS))
    model.eval()
    return model
