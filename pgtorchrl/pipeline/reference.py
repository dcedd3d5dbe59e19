"""What a spec may hold, read off the registries and the schema: every section, every registered
component with its one-line summary, and every field with its type, default and doc line.

One source for ``pgtorchrl list`` (text) and the documentation's spec reference (``docs/``,
generated at build time), so neither can drift from what the spec accepts.

>>> train = next(s for s in fixed_sections() if s.name == "train")
>>> next(f for f in train.fields if f.name == "total_frames").default is REQUIRED
True
"""

from __future__ import annotations

import inspect
import typing
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import BaseModel

from pgtorchrl.components import REGISTRIES, TORCHRL_PREFIX, TRANSFORMS
from pgtorchrl.config.registry import Registry
from pgtorchrl.pipeline.schema import FIXED_SECTIONS, Spec

__all__ = [
    "REQUIRED",
    "FieldDoc",
    "ComponentDoc",
    "SectionDoc",
    "type_name",
    "component_sections",
    "fixed_sections",
    "top_level_fields",
]

REQUIRED = object()
"""The default of a field the spec must give."""


@dataclass(frozen=True)
class FieldDoc:
    """One spec field: its key, its type as a user writes it, its default (:data:`REQUIRED` when
    there is none) and its doc line (``""`` when it has none)."""

    name: str
    type: str
    default: Any
    doc: str

    @property
    def default_text(self) -> str:
        """``required`` or ``default 0.99``, as ``pgtorchrl list`` prints it."""
        return "required" if self.default is REQUIRED else f"default {self.default!r}"

    @property
    def default_yaml(self) -> str:
        """The default as a spec writes it (``true``, ``null``, ``[64, 64]``); ``""`` when required.

        >>> FieldDoc("x", "bool | None", None, "").default_yaml
        'null'
        """
        if self.default is REQUIRED:
            return ""
        text = yaml.safe_dump(_plain(self.default), default_flow_style=True, width=10**6).strip()
        return text.removesuffix("\n...").removesuffix("...").strip()


@dataclass(frozen=True)
class ComponentDoc:
    """A registered component: its registry name, its summary (the factory's first doc line),
    whether it is TorchRL's own class, and its fields."""

    name: str
    summary: str
    fields: tuple[FieldDoc, ...]

    @property
    def is_torchrl(self) -> bool:
        return self.name.startswith(TORCHRL_PREFIX)


@dataclass(frozen=True)
class SectionDoc:
    """A spec section: its key (``optim``, ``train``, ``env.transforms``), which other keys draw
    from the same registry (``critic_optim``), a summary, and its components or its own fields."""

    name: str
    summary: str
    also: tuple[str, ...] = ()
    components: tuple[ComponentDoc, ...] = ()
    fields: tuple[FieldDoc, ...] = ()


def _plain(value: Any) -> Any:
    """Tuples as lists, models as mappings: what YAML can write."""
    if isinstance(value, BaseModel):
        return _plain(value.model_dump())
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def type_name(annotation: Any) -> str:
    """``int``, ``'a' | 'b'``, ``list[int]``, ``float | None``: a field's type as a user writes it.

    >>> type_name(typing.Optional[typing.Literal["a", "b"]])
    "'a' | 'b' | None"
    """
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return " | ".join(map(repr, args))
    if origin is typing.Annotated:
        return type_name(args[0])
    if args:
        inner = [type_name(a) for a in args]
        return (
            " | ".join(inner)
            if origin in (typing.Union, type(int | None))
            else f"{origin.__name__}[{', '.join(inner)}]"
        )
    return "None" if annotation is type(None) else getattr(annotation, "__name__", str(annotation))


def _fields(model: type[BaseModel], skip: tuple[str, ...] = ("name",)) -> tuple[FieldDoc, ...]:
    return tuple(
        FieldDoc(
            name,
            type_name(info.annotation),
            REQUIRED if info.is_required() else info.default,
            " ".join((info.description or "").split()),
        )
        for name, info in model.model_fields.items()
        if name not in skip
    )


def _components(registry: Registry) -> tuple[ComponentDoc, ...]:
    return tuple(ComponentDoc(e.name, e.summary, _fields(e.model)) for e in registry.entries())


def component_sections() -> list[SectionDoc]:
    """The sections that name a registered component, in the spec's order, then the ``gym`` env's
    ``transforms`` list."""
    sections: list[SectionDoc] = []
    for key, registry in REGISTRIES.items():
        if any(registry is REGISTRIES[s.name] for s in sections):
            continue
        also = tuple(k for k, r in REGISTRIES.items() if r is registry and k != key)
        summary = Spec.model_fields[key].description or ""
        sections.append(SectionDoc(key, summary, also, _components(registry)))
    sections.append(
        SectionDoc(
            "env.transforms",
            "A list under env.transforms of env 'gym' (and 'atari'): TorchRL transforms run in order "
            "after the env's own RewardSum and StepCounter.",
            components=_components(TRANSFORMS),
        )
    )
    return sections


def fixed_sections() -> list[SectionDoc]:
    """The sections that are not components (``train``, ``eval``, ``tracking``, ``sweep``, ``tune``)."""
    return [
        SectionDoc(key, inspect.cleandoc(model.__doc__ or "").split("\n", 1)[0], fields=_fields(model, skip=()))
        for key, model in FIXED_SECTIONS.items()
    ]


def top_level_fields() -> tuple[FieldDoc, ...]:
    """The spec's own keys that are plain values (``experiment``, ``plugins``, ``seed``, ``device``)."""
    sections = set(REGISTRIES) | set(FIXED_SECTIONS)
    return tuple(f for f in _fields(Spec, skip=()) if f.name not in sections)
