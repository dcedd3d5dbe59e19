"""A spec's ``plugins:``: the modules it trusts, imported before it is validated (they may
register components), and the ``module:function`` components its sections name, which must come
from those modules."""

from __future__ import annotations

import importlib
import re
import sys
from typing import Any

from pgtorchrl.components import REGISTRIES
from pgtorchrl.config.registry import shown
from pgtorchrl.config.spec_file import SpecError
from pgtorchrl.pipeline.schema import PLUGIN_PATTERN

__all__ = ["load_plugins"]


def load_plugins(raw: dict[str, Any], source: str) -> None:
    """Imports the spec's ``plugins:`` modules and registers the ``module:function`` components
    its sections name, which must come from those modules."""
    plugins = raw.get("plugins", [])
    if not isinstance(plugins, list) or not all(isinstance(m, str) and re.match(PLUGIN_PATTERN, m) for m in plugins):
        raise SpecError(f"{source}: plugins: a list of module names like my_package.components")
    for module in plugins:
        try:
            importlib.import_module(module)
        except SystemExit as err:  # a plugin that exits at import: say which, rather than leave silently
            raise SpecError(f"{source}: plugins: importing {module!r} called sys.exit({err.code!r})") from None
        except Exception as err:  # noqa: BLE001 (a plugin's own import error, reported as the spec's problem)
            raise SpecError(f"{source}: plugins: cannot import {module!r} ({type(err).__name__}: {err})") from None
    env = raw.get("env")
    env_id = env.get("env_id") if isinstance(env, dict) else None
    module = env_id.partition(":")[0] if isinstance(env_id, str) and ":" in env_id else None
    if module is not None and module not in plugins and re.match(PLUGIN_PATTERN, module):  # else: an unknown id
        raise SpecError(
            f"{source}: env.env_id: {env_id!r} imports code from {module!r}, which the spec does not trust: "
            f"add it under plugins: [{module}] (its import registers the env)"
        )
    for section, registry in REGISTRIES.items():
        node = raw.get(section)
        name = node.get("name") if isinstance(node, dict) else None
        if not isinstance(name, str) or ":" not in name or name in registry:
            continue
        module, _, attr = name.partition(":")
        if not re.match(PLUGIN_PATTERN, module):
            raise SpecError(f"{source}: {section}.name: {shown(name)} is neither a registered name nor module:function")
        if module not in plugins:
            raise SpecError(
                f"{source}: {section}.name: {name!r} imports code from {module!r}, which the spec does not "
                f"trust: add it under plugins: [{module}] (or use a registered name)"
            )
        factory = getattr(sys.modules[module], attr, None)
        if not callable(factory):
            raise SpecError(f"{source}: {section}.name: module {module!r} has no function {attr!r}")
        problem = registry.factory_problem(factory)
        if problem is not None:
            raise SpecError(f"{source}: {section}.name: {name!r} {problem}")
        registry.register(name)(factory)
