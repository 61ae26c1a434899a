"""Models in the window: the picker, My models, GPU offload settings and the hardware panel."""
