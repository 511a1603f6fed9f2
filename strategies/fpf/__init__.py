"""FPF and k-FPF (Zhao et al., ICML 2023): the finetuning both share (`finetune`), FPF as a
plugin over any strategy (`plugin`) and k-FPF as a strategy (`k_fpf`)."""

from clbench.strategies.fpf import k_fpf, plugin

__all__ = ["k_fpf", "plugin"]
