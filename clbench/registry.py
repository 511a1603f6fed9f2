"""Name -> component registries (datasets, scenarios, models, strategies, plugins).

Built-in components live in `clbench.scenarios`, `clbench.strategies` (the repository's
`scenarios/` and `strategies/` folders), `clbench.data.sources` and `clbench.models`. A built-in
whose implementation needs torch declares itself in a torch-free *spec* module of its package's
``specs`` folder: a class holding its parameters (``Config``), summary and capabilities, with
``@REGISTRY.spec("name", "module:Class")`` naming where the implementation is. Validating a
config, hashing it, listing components and answering for a finished run read specs only, so
they never import torch; `Registry.get` imports the implementation when a run needs it (the
implementation subclasses its spec). A built-in that needs no torch to import (the file-format
data sources) is its own spec and registers in the ``specs`` folder. A built-in package without
a ``specs`` folder (the scenario generators, torch-free themselves) is imported whole on first
lookup.

Components of your own are found in two ways, both imported whole on first lookup:

- an installed package's entry points in the group named by the registry (e.g.
  ``clbench.strategies``: ``[project.entry-points."clbench.strategies"] my_lwf = "my_pkg.lwf"``);
- the ``CLBENCH_IMPORT`` environment variable: Python files or module names, separated by commas
  (``CLBENCH_IMPORT=./lwf.py clbench run strategy.name=my_lwf``); sweep workers inherit it.

A component of your own is its own spec: one class with a nested ``Config``, registered with
``@REGISTRY.register("name")``.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import pkgutil
import sys
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Generic, TypeVar, get_origin

from pydantic import BaseModel, ValidationError

from clbench.errors import ConfigError

T = TypeVar("T")
IMPORT_VARIABLE = "CLBENCH_IMPORT"


def import_user_module(item: str) -> None:
    """Import a module named in ``CLBENCH_IMPORT``: a ``.py`` file or an importable name."""
    try:
        if not item.endswith(".py"):
            importlib.import_module(item)
            return
        path = Path(item).resolve()
        digest = hashlib.sha256(str(path).encode()).hexdigest()[:8]  # same in every process
        name = f"clbench_user_{path.stem}_{digest}"
        if name in sys.modules:
            return
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None or not path.is_file():
            raise ImportError(f"no Python file at {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
    except ImportError as exc:
        raise ConfigError(
            IMPORT_VARIABLE, item, f"Python files or importable modules, comma-separated ({exc})"
        ) from None


SPECS_FOLDER = "specs"  # a built-in package's folder of torch-free spec modules


class Registry(Generic[T]):
    """A lazily populated mapping from names to components.

    Each component is a class with a nested pydantic ``Config`` model describing its parameters.
    A name maps to a *spec* (what validation and listings read) and an implementation (what a
    run builds); for components without a separate spec the two are the same class.
    """

    def __init__(
        self, kind: str, builtin_packages: tuple[str, ...], entry_point_group: str
    ) -> None:
        self.kind = kind
        self._builtin_packages = builtin_packages
        self._entry_point_group = entry_point_group
        self._items: dict[str, type[T]] = {}  # implementations imported so far
        self._specs: dict[str, type[Any]] = {}
        self._locations: dict[str, str] = {}  # name -> "module:Class" of a spec's implementation
        self._loaded = False

    def register(self, name: str) -> Callable[[type[T]], type[T]]:
        """Class decorator registering the implementation ``cls`` under ``name``."""

        def decorator(cls: type[T]) -> type[T]:
            existing = self._items.get(name)
            if existing is not None and existing is not cls:
                raise ValueError(f"{self.kind} {name!r} is registered twice ({existing} and {cls})")
            spec = self._specs.get(name)
            if spec is not None and name in self._locations and not issubclass(cls, spec):
                raise ValueError(
                    f"{self.kind} {name!r} is already declared by {spec.__module__} and {cls} is "
                    "not its implementation: register yours under another name"
                )
            cls.registered_name = name  # type: ignore[attr-defined]
            self._items[name] = cls
            self._specs.setdefault(name, cls)
            return cls

        return decorator

    def spec(self, name: str, implementation: str) -> Callable[[type[Any]], type[Any]]:
        """Class decorator declaring the torch-free spec of built-in ``name``, implemented by
        ``implementation`` ("module:Class", imported by `get`)."""

        def decorator(cls: type[Any]) -> type[Any]:
            existing = self._specs.get(name)
            if existing is not None and existing is not cls:
                raise ValueError(f"{self.kind} {name!r} is declared twice ({existing} and {cls})")
            cls.registered_name = name
            self._specs[name] = cls
            self._locations[name] = implementation
            return cls

        return decorator

    def unregister(self, name: str) -> None:
        """Remove a component registered with `register` (e.g. one a test or notebook cell
        defined); built-in specs stay."""
        cls = self._items.pop(name)
        if self._specs.get(name) is cls:
            del self._specs[name]

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for package_name in self._builtin_packages:
            if importlib.util.find_spec(f"{package_name}.{SPECS_FOLDER}") is not None:
                package_name = f"{package_name}.{SPECS_FOLDER}"  # implementations: on `get`
            package = importlib.import_module(package_name)
            for module in pkgutil.iter_modules(package.__path__):
                if not module.name.startswith("_"):
                    importlib.import_module(f"{package_name}.{module.name}")
        for ep in entry_points(group=self._entry_point_group):
            ep.load()
        for item in os.environ.get(IMPORT_VARIABLE, "").split(","):
            if item.strip():
                import_user_module(item.strip())

    def spec_of(self, name: str, field: str | None = None) -> type[Any]:
        """The spec (``Config``, summary, capabilities) of ``name``, without importing its
        implementation; raise a `ConfigError` for an unknown name."""
        self._load()
        if name not in self._specs:
            raise ConfigError(field or f"{self.kind}.name", name, self._specs.keys())
        return self._specs[name]

    def get(self, name: str, field: str | None = None) -> type[T]:
        """Return the implementation registered under ``name`` or raise a `ConfigError`."""
        self.spec_of(name, field)
        if name not in self._items:
            module, _, attribute = self._locations[name].partition(":")
            importlib.import_module(module)  # registers it
            if name not in self._items:
                raise LookupError(f"{module} did not register {self.kind} {name!r} ({attribute})")
        return self._items[name]

    def names(self) -> list[str]:
        self._load()
        return sorted(self._specs)

    def specs(self) -> Iterator[tuple[str, type[Any]]]:
        """(name, spec) of every component, sorted by name, importing no implementation."""
        self._load()
        return iter(sorted(self._specs.items()))

    def __iter__(self) -> Iterator[tuple[str, type[T]]]:
        """(name, implementation) of every component: imports every implementation."""
        return iter([(name, self.get(name)) for name in self.names()])

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._specs


def validate_params(config_cls: type[BaseModel], params: dict[str, Any], prefix: str) -> BaseModel:
    """Validate ``params`` against ``config_cls``; raise `ConfigError` naming ``prefix.field``."""
    try:
        return config_cls.model_validate(params)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        field = f"{prefix}.{loc}" if loc else prefix
        if err["type"] == "extra_forbidden":
            allowed = ", ".join(sorted(config_cls.model_fields)) or "(no parameters)"
            raise ConfigError(field, err.get("input"), f"known parameters are {allowed}") from None
        raise ConfigError(
            field, err.get("input"), err["msg"].removeprefix("Value error, ")
        ) from None


def describe_params(config_cls: type[BaseModel]) -> list[tuple[str, str, Any, str]]:
    """(name, type, default, description) for each parameter of a component config."""
    rows = []
    for name, info in config_cls.model_fields.items():
        annotation = (
            str(info.annotation) if get_origin(info.annotation) else info.annotation.__name__
        )
        default = (
            "(required)" if info.is_required() else info.get_default(call_default_factory=True)
        )
        rows.append((name, annotation.replace("typing.", ""), default, info.description or ""))
    return rows


DATASETS: Registry[Any] = Registry("data", ("clbench.data.sources",), "clbench.datasets")
SCENARIOS: Registry[Any] = Registry("scenario", ("clbench.scenarios",), "clbench.scenarios")
MODELS: Registry[Any] = Registry("model", ("clbench.models",), "clbench.models")
STRATEGIES: Registry[Any] = Registry("strategy", ("clbench.strategies",), "clbench.strategies")
# plugins live next to the methods they belong to (e.g. View-Batch, FPF in clbench.strategies)
PLUGINS: Registry[Any] = Registry("plugin", ("clbench.strategies",), "clbench.plugins")
