"""``key.path=value`` overrides of a raw spec mapping (the command line's and a sweep's), values
parsed as YAML, each failure a one-line :class:`~pgtorchrl.config.spec_file.SpecError`."""

from __future__ import annotations

from typing import Any

from pgtorchrl.config.spec_file import SpecError, read_yaml

__all__ = ["apply_overrides", "set_path", "NotASection"]


def apply_overrides(raw: dict[str, Any], overrides: list[str], source: str) -> dict[str, Any]:
    """Applies ``key.path=value`` overrides (values parsed as YAML) to a raw spec mapping."""
    for item in overrides:
        path, sep, value = item.partition("=")
        if not sep or not path:
            raise SpecError(f"{source}: override {item!r}: write key.path=value, e.g. optim.lr=1.0e-3")
        parsed = read_yaml(f"v: {value}", f"override {item!r}")["v"] if value else None
        try:
            set_path(raw, path, parsed)
        except NotASection as err:
            raise SpecError(f"{source}: override {item!r}: {err.part!r} is not a section") from None
    return raw


class NotASection(KeyError):
    """A key path whose part ``part`` names a value, not a section."""

    def __init__(self, part: str):
        super().__init__(part)
        self.part = part


def set_path(raw: dict[str, Any], path: str, value: Any, create: bool = True) -> None:
    """``raw[a][b][c] = value`` for ``path = "a.b.c"``, creating missing sections (unless not
    ``create``); raises :class:`NotASection` where a part of the path is not a section."""
    node: Any = raw
    *parents, last = path.split(".")
    for part in parents:
        node = node.setdefault(part, {}) if create else node.get(part)
        if not isinstance(node, dict):
            raise NotASection(part)
    node[last] = value
