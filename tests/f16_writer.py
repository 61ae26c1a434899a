"""Write an F16 copy of a quantized GGUF model with the `gguf` package: every quantized tensor
dequantized with gguf's own helpers (gguf.quants.dequantize), every key copied. The copy is a model
twice the size that writes nearly the same text, so the original can draft for it (speculative
decoding) with a real acceptance rate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType, GGUFReader, GGUFValueType, GGUFWriter, LlamaFileType
from gguf.quants import dequantize

#: Keys the writer sets itself.
_OWN_KEYS = {"general.architecture", "general.file_type"}


def write_f16_copy(path: Path, source: Path, name: str = "F16 copy") -> Path:
    """`source` with its weights in F16 (norms and other vectors in F32), at `path`."""
    reader = GGUFReader(source)
    arch = str(reader.fields["general.architecture"].contents())
    writer = GGUFWriter(path, arch)
    for field in reader.fields.values():
        if field.name.startswith("GGUF.") or field.name in _OWN_KEYS:
            continue
        if field.name == "general.name":
            writer.add_name(name)
            continue
        kind = field.types[0]
        sub = field.types[-1] if kind == GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), kind, sub_type=sub)
    writer.add_file_type(LlamaFileType.MOSTLY_F16)
    for tensor in reader.tensors:
        if tensor.tensor_type in (GGMLQuantizationType.F32, GGMLQuantizationType.F16):
            values = np.array(tensor.data)
        else:
            values = dequantize(tensor.data, tensor.tensor_type)
        values = values.reshape(tuple(int(n) for n in reversed(tensor.shape)))
        values = values.astype(np.float16 if values.ndim > 1 else np.float32)
        writer.add_tensor(tensor.name, values)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


if __name__ == "__main__":
    import sys

    write_f16_copy(Path(sys.argv[2]), Path(sys.argv[1]))
