"""Torch-free specs of the built-in data sources (parameters, summary, run labels), each naming
its loader; the registry reads these to validate configs without importing torch."""
