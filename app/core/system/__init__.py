"""This computer as llama.cpp sees it: the llama.cpp library, its devices, RAM and CPUs."""
