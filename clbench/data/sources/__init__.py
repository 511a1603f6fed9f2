"""Built-in data sources, one module per family; each registers itself in `DATASETS` on import."""
