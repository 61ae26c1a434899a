"""Generation: the llama.cpp engine and its parts, the inference thread and its events, context policy."""
