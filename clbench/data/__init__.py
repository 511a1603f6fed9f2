"""Data sources, in-memory datasets and the device batch path."""
