"""Model files: GGUF reading and validation, model shape, memory estimate, GPU offload, the library."""
