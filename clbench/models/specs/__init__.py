"""Torch-free specs of the built-in models (parameters, summary), each naming its builder; the
registry reads these to validate configs and list models without importing torch."""
