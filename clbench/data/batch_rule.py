"""How many mini-batches an epoch over ``n`` samples makes (torch-free).

`clbench.data.batches.PhaseBatches` follows this rule when it slices an epoch, and a dry run
counts the updates of a phase with it without building the batches.
"""

from __future__ import annotations


def batches_per_epoch(n: int, batch_size: int, drop_last: bool) -> int:
    """``ceil(n / batch_size)``, or ``n // batch_size`` with ``drop_last``; a lone trailing sample
    joins the previous batch instead, since BatchNorm cannot train on one."""
    if drop_last or (n % batch_size == 1 and n > 1):
        return n // batch_size
    return -(-n // batch_size)
