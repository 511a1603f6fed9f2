"""Specs of the Avalanche baselines (``avl_*``): the table of methods, their parameters and
capabilities (implementation: `avalanche.py`, which also documents how the adapter drives them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field, create_model

from clbench.errors import ConfigError
from clbench.registry import STRATEGIES
from clbench.strategy.spec import MODEL, TRAIN_BATCHES, Capabilities, StrategySpec

if TYPE_CHECKING:
    from clbench.config import RunConfig

ALL_SETTINGS = frozenset({"class", "domain", "task"})
CLASS_ONLY = frozenset({"class"})


@dataclass(frozen=True)
class MethodSpec:
    """One Avalanche method: its class, parameters and how the adapter feeds it."""

    avalanche_class: str  # name in `avalanche.training`
    summary: str
    params: dict[str, tuple[Any, Any, str]] = field(
        default_factory=dict
    )  # name: (type, default, doc)
    fixed: dict[str, Any] = field(default_factory=dict)  # constructor kwargs not exposed
    settings: frozenset[str] = ALL_SETTINGS
    mode: str = "batch"  # batch | replay | loader
    # Avalanche replays only once its memory holds a whole memory batch (len(buffer) >=
    # batch_size_mem), so a memory batch larger than mem_size means it never replays
    replays_full_batches: bool = False
    # the reader of (samples, bytes) held in the method's memory, a key of the implementation's
    # MEMORY_READERS; None: the method keeps no memory
    memory: str | None = None
    build: str | None = None  # custom constructor (SI, iCaRL), a key of its BUILDERS
    # Python modules Avalanche needs only mid-run (module: what needs it): checked before a run
    requires: dict[str, str] = field(default_factory=dict)

    @property
    def uses_buffer(self) -> bool:
        return self.memory is not None


_MEM = (int, 200, "Memory size (Avalanche default 200)")
METHODS: dict[str, MethodSpec] = {
    "naive": MethodSpec("Naive", "[Avalanche] Naive fine-tuning (cross-check of clbench's naive)"),
    "replay": MethodSpec(
        "Replay",
        "[Avalanche] Replay: experience-balanced memory, new + memory batch per update",
        {
            "mem_size": _MEM,
            "batch_size_mem": (
                int | None,
                None,
                "Memory samples per update (Avalanche default: train batch size)",
            ),
        },
        mode="replay",
        memory="storage",
    ),
    "ewc": MethodSpec(
        "EWC",
        "[Avalanche] EWC (Kirkpatrick 2017), one Fisher penalty per experience",
        {
            "ewc_lambda": (
                float,
                0.4,
                "Penalty weight (required in Avalanche; 0.4 as in its examples/ewc_mnist.py)",
            )
        },
        fixed={"mode": "separate"},
    ),
    "online_ewc": MethodSpec(
        "EWC",
        "[Avalanche] Online EWC (Schwarz 2018): one decayed running Fisher",
        {
            "ewc_lambda": (float, 0.4, "Penalty weight (required in Avalanche)"),
            "decay_factor": (float, 0.9, "Fisher decay (required for mode=online)"),
        },
        fixed={"mode": "online"},
    ),
    "si": MethodSpec(
        "SynapticIntelligence",
        "[Avalanche] Synaptic Intelligence (Zenke 2017)",
        {
            "si_lambda": (
                float,
                1.0,
                "Penalty weight (required in Avalanche; c=1 as in Zenke 2017 for split MNIST)",
            ),
            "eps": (float, 1e-7, "Damping (Avalanche default)"),
            "fix_cpu_alias": (
                bool,
                True,
                "Fix Avalanche 0.6's CPU aliasing bug that makes SI's penalty exactly 0 "
                "(false: upstream behaviour, SI = naive fine-tuning on CPU)",
            ),
            "nonnegative_importance": (
                bool,
                True,
                "Clip importances at 0 as the official code does (Avalanche keeps negative "
                "ones, which make the penalty unbounded below; false: upstream)",
            ),
        },
        build="si",
    ),
    "lwf": MethodSpec(
        "LwF",
        "[Avalanche] Learning without Forgetting (Li & Hoiem 2017)",
        {
            "alpha": (float, 1.0, "Distillation weight (required in Avalanche)"),
            "temperature": (float, 2.0, "Softmax temperature (required; T=2 as in the paper)"),
        },
    ),
    "mas": MethodSpec(
        "MAS",
        "[Avalanche] Memory Aware Synapses (Aljundi 2018)",
        {
            "lambda_reg": (float, 1.0, "Penalty weight (Avalanche default)"),
            "alpha": (float, 0.5, "Importance running-average factor (Avalanche default)"),
        },
    ),
    "gem": MethodSpec(
        "GEM",
        "[Avalanche] GEM (Lopez-Paz 2017): gradient projection on per-experience memories",
        {
            "patterns_per_exp": (int, 256, "Memory per experience (required in Avalanche)"),
            "memory_strength": (float, 0.5, "QP margin (Avalanche default)"),
        },
        memory="gem",
        requires=dict.fromkeys(
            ("qpsolvers", "quadprog"),
            "Avalanche's GEM solves its QP with qpsolvers.solve_qp(..., solver='quadprog')",
        ),
    ),
    "agem": MethodSpec(
        "AGEM",
        "[Avalanche] A-GEM (Chaudhry 2019): averaged gradient projection",
        {
            "patterns_per_exp": (int, 256, "Memory per experience (required in Avalanche)"),
            "sample_size": (int, 64, "Memory samples per reference gradient (Avalanche default)"),
        },
        memory="agem",
    ),
    "gdumb": MethodSpec(
        "GDumb",
        "[Avalanche] GDumb: retrain from init on a class-balanced buffer each experience",
        {"mem_size": _MEM},
        mode="loader",
        memory="storage",
    ),
    "icarl": MethodSpec(
        "ICaRL",
        "[Avalanche] iCaRL: exemplars, distillation, nearest-mean-of-exemplars prediction",
        {
            "memory_size": (int, 2000, "Exemplars in total (required in Avalanche)"),
            "fixed_memory": (bool, True, "Fixed total memory (required in Avalanche)"),
        },
        fixed={"buffer_transform": None},
        settings=CLASS_ONLY,
        mode="loader",
        memory="icarl",
        build="icarl",
    ),
    "der": MethodSpec(
        "DER",
        "[Avalanche] DER++ (Buzzega 2020): logit + label replay",
        {
            "mem_size": _MEM,
            "batch_size_mem": (int | None, None, "Memory batch (Avalanche default: train batch)"),
            "alpha": (float, 0.1, "Logit-distillation weight (Avalanche default)"),
            "beta": (float, 0.5, "Label-replay weight (Avalanche default; 0 gives DER)"),
        },
        memory="storage",
        replays_full_batches=True,  # avalanche/training/supervised/der.py L241
    ),
    "er_ace": MethodSpec(
        "ER_ACE",
        "[Avalanche] ER-ACE (Caccia 2022): asymmetric cross-entropy replay",
        {"mem_size": _MEM, "batch_size_mem": (int, 10, "Memory batch (Avalanche default)")},
        settings=CLASS_ONLY,
        memory="storage",
        replays_full_batches=True,  # avalanche/training/supervised/er_ace.py L160
    ),
    "mir": MethodSpec(
        "MIR",
        "[Avalanche] MIR (Aljundi 2019): maximally interfered retrieval",
        {
            "mem_size": (int, 200, "Memory size (required in Avalanche)"),
            "subsample": (int, 50, "Candidates scored per update (required in Avalanche)"),
            "batch_size_mem": (int, 10, "Retrieved samples per update (Avalanche default: 1)"),
        },
        memory="storage",
    ),
}


class AvalancheSpec(StrategySpec):
    """What every ``avl_*`` strategy shares."""

    # Avalanche plugins keep Python-object state (buffers, importances, old models) that the
    # adapter cannot serialise: no checkpoints, an interrupted run starts over
    resumable: ClassVar[bool] = False
    method: ClassVar[str]
    spec: ClassVar[MethodSpec]

    @classmethod
    def check_run(cls, params: Any, config: RunConfig) -> None:
        """Refuse a memory batch that can never be drawn (the method would silently be naive)."""
        if not cls.spec.replays_full_batches:
            return
        memory_batch = params.batch_size_mem
        field = "strategy.batch_size_mem"
        if memory_batch is None:  # Avalanche's default: the train batch
            memory_batch, field = config.train.batch_size, "train.batch_size"
        if memory_batch > params.mem_size:
            raise ConfigError(
                field,
                memory_batch,
                f"at most strategy.mem_size ({params.mem_size}) for avl_{cls.method}: Avalanche "
                "replays only once its memory holds a whole memory batch, so it would never "
                "replay (set strategy.batch_size_mem)",
            )


def _declare(method: str, spec: MethodSpec) -> type[AvalancheSpec]:
    fields: dict[str, Any] = {
        name: (typ, Field(default, description=doc))
        for name, (typ, default, doc) in spec.params.items()
    }
    config = create_model(f"{spec.avalanche_class}Config", __base__=StrategySpec.Config, **fields)
    cls = type(
        f"AvalancheSpec_{method}",
        (AvalancheSpec,),
        {
            "Config": config,
            "method": method,
            "spec": spec,
            "summary": spec.summary,
            "capabilities": Capabilities(
                settings=spec.settings,
                uses_buffer=spec.uses_buffer,
                # Avalanche computes its own loss and replays from its own storage; the batch
                # clbench hands in is trained on, except by the methods that read their own loader
                routes=frozenset({MODEL})
                if spec.mode == "loader"
                else frozenset({TRAIN_BATCHES, MODEL}),
                steps_through_api=False,  # Avalanche runs its own backward and optimizer step
            ),
            "__module__": __name__,
            "__doc__": f"Avalanche's `{spec.avalanche_class}`: parameters and capabilities.",
        },
    )
    where = f"clbench.strategies.avalanche:Avalanche_{method}"
    return STRATEGIES.spec(f"avl_{method}", where)(cls)


SPECS: dict[str, type[AvalancheSpec]] = {m: _declare(m, s) for m, s in METHODS.items()}
