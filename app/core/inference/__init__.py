"""Generation: the llama.cpp engine, the one inference thread and the context policy."""
