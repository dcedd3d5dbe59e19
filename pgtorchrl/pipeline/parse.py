"""A spec file, or a raw mapping, into one validated :class:`~pgtorchrl.pipeline.schema.Spec`
(or a one-line :class:`~pgtorchrl.config.spec_file.SpecError`); a spec's sweep into its
validated combinations; a spec as flat MLflow params.

Everything is checked before anything is built or tracked: YAML syntax, unknown keys (with the
nearest known key), types (strict: no string passes as a number), component names (with the
nearest registered name), value ranges, and the cross-section rules (GAE needs a critic ...).
"""

from __future__ import annotations

import copy
import itertools
from pathlib import Path
from typing import Any, Optional

from pydantic import ValidationError, create_model

from pgtorchrl.components import REGISTRIES
from pgtorchrl.config.overrides import NotASection, apply_overrides, set_path
from pgtorchrl.config.registry import Registry
from pgtorchrl.config.spec_file import SpecError, read_spec_text, read_yaml, reject_non_finite
from pgtorchrl.pipeline.messages import format_error
from pgtorchrl.pipeline.plugins import load_plugins
from pgtorchrl.pipeline.rules import CrossSectionError
from pgtorchrl.pipeline.schema import Spec, section_type

__all__ = ["load_spec", "parse_spec", "expand_sweep", "flatten"]

_BUILT_AT = Registry.version  # the registries Spec's sections were built from

_spec_classes: dict[int, type] = {}


def _spec_class() -> type[Spec]:
    """:class:`Spec`, or a subclass accepting components registered since it was built (plugins)."""
    if Registry.version == _BUILT_AT:
        return Spec
    if Registry.version not in _spec_classes:
        optional = ("critic", "critic_optim")
        fields = {k: (Optional[section_type(k)], None) if k in optional else (section_type(k), ...) for k in REGISTRIES}
        # the sections' types come from the registries at run time, which create_model's overloads cannot see
        _spec_classes[Registry.version] = create_model("Spec", __base__=Spec, **fields)  # type: ignore[call-overload]
    return _spec_classes[Registry.version]


def parse_spec(raw: dict[str, Any], source: str = "<spec>") -> Spec:
    """Validates a raw mapping into a :class:`Spec`, or raises a one-line :class:`SpecError`."""
    reject_non_finite(raw, "", source)
    if isinstance(raw, dict):
        load_plugins(raw, source)
    try:
        return _spec_class().model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        for err in errors:
            ctx = err.get("ctx") or {}
            cross = ctx.get("error")
            if isinstance(cross, CrossSectionError):
                raise SpecError(f"{source}: {cross.path}: {cross.message}") from None
        first = min(errors, key=lambda e: (e["type"] != "union_tag_invalid", len(e["loc"])))
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        raise SpecError(f"{source}: {format_error(first)}{more}") from None


def load_spec(path: str | Path, overrides: list[str] | None = None) -> Spec:
    """Reads, overrides and validates a spec file.

    >>> load_spec("pipelines/vpg_cartpole.yaml").env.env_id
    'CartPole-v1'
    """
    source = str(path)
    text = read_spec_text(path)
    raw = read_yaml(text, source)
    raw = apply_overrides(raw, overrides or [], source)
    return parse_spec(raw, source)


def expand_sweep(spec: Spec, source: str = "<spec>") -> list[tuple[str, Spec]]:
    """The ``(label, spec)`` of every combination of ``spec.sweep`` (each without a sweep),
    validated like a file: a bad value is reported as ``sweep.values.KEY: ...``."""
    sweep = spec.sweep
    if sweep is None:
        return [("", spec)]
    keys = list(sweep.values)
    lists = [sweep.values[k] for k in keys]
    combos = list(zip(*lists)) if sweep.mode == "zip" else list(itertools.product(*lists))
    base = spec.model_dump(mode="json", exclude={"sweep"})
    out = []
    for i, combo in enumerate(combos):
        raw = copy.deepcopy(base)
        for key, value in zip(keys, combo):
            try:
                set_path(raw, key, value, create=False)
            except NotASection as err:
                raise SpecError(f"{source}: sweep.values.{key}: {err.part!r} is not a section of the spec") from None
        try:
            child = parse_spec(raw, source)
        except SpecError as err:
            raise SpecError(f"{source}: sweep.values: {str(err).removeprefix(source + ': ')}") from None
        label = sweep.labels[i] if sweep.labels else ", ".join(f"{k}={v}" for k, v in zip(keys, combo))
        out.append((label, child))
    return out


def flatten(spec: Spec) -> dict[str, Any]:
    """The spec as ``{"optim.lr": 0.003, ...}`` for MLflow params (lists as their repr)."""
    out: dict[str, Any] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{prefix}.{k}" if prefix else k)
        else:
            out[prefix] = node

    walk(spec.model_dump(mode="json"), "")
    return out
