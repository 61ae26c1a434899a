"""A vocabulary listing one token twice makes llama.cpp abort the whole process when it loads the
model (GGML_ASSERT in llama_vocab::load): the GGUF validator refuses such a file with a message, so
neither the library nor a load ever hands it to llama.cpp."""

from __future__ import annotations

from pathlib import Path

import pytest
from gguf import GGUFWriter, TokenType

from app.core.inference.engine import Engine
from app.core.models.gguf_file import ModelFileError, inspect_model


def test_a_token_listed_twice_is_a_clear_error_not_a_crash(tmp_path: Path) -> None:
    import numpy as np

    path = tmp_path / "twice.gguf"
    w = GGUFWriter(path, "llama")
    w.add_context_length(64)
    w.add_embedding_length(8)
    w.add_block_count(1)
    w.add_head_count(1)
    w.add_tokenizer_model("llama")
    w.add_token_list(["<unk>", "<s>", "</s>", "hello", "hello"])
    w.add_token_scores([0.0] * 5)
    w.add_token_types(
        [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL, TokenType.NORMAL, TokenType.NORMAL]
    )
    w.add_tensor("token_embd.weight", np.zeros((5, 8), np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with pytest.raises(ModelFileError, match="lists the token 'hello' twice"):
        inspect_model(path)
    with pytest.raises(ModelFileError, match="twice"):
        Engine().load(path)
