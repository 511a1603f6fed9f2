"""Torch-free specs of the built-in strategies and plugins: parameters (``Config``), summary and
capabilities, each naming its implementation. The registry reads these to validate configs and
list components without importing torch (`clbench.registry`)."""
