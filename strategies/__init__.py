"""Built-in strategies, one file each; every module registers itself with `STRATEGIES`."""
