"""Reading a spec file: its text (a regular UTF-8 file of bounded size) and its YAML (safe,
duplicate keys refused, alias bombs refused, no NaN or infinity), each failure a one-line
:class:`SpecError` naming the file and, where YAML says, the line and column."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml

from pgtorchrl.config.registry import shown

__all__ = ["SpecError", "read_spec_text", "read_yaml", "reject_non_finite", "MAX_SPEC_BYTES", "MAX_SPEC_VALUES"]


class SpecError(ValueError):
    """A spec problem, rendered as one line: ``FILE: key.path: what is wrong and how to fix it``."""


MAX_SPEC_BYTES = 1_000_000
"""A spec file larger than this is refused before it is read (no pipeline spec comes near)."""
MAX_SPEC_VALUES = 100_000
"""A spec whose YAML expands to more values than this (anchors and aliases count once per use)
is refused: a nested alias "bomb" would otherwise take minutes to walk."""


def read_spec_text(path: str | Path) -> str:
    """A spec file's text, or a one-line :class:`SpecError`: no such file, not a regular file
    (a folder, ``/dev/zero``), larger than :data:`MAX_SPEC_BYTES`, unreadable, not UTF-8."""
    source, path = str(path), Path(path)
    try:
        if not path.exists():
            raise SpecError(f"{source}: no such file")
        if not path.is_file():
            raise SpecError(f"{source}: not a regular file: name a YAML spec file")
        size = path.stat().st_size
        if size > MAX_SPEC_BYTES:
            raise SpecError(f"{source}: {size} bytes, more than the {MAX_SPEC_BYTES} a spec may have")
        return path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise SpecError(f"{source}: cannot read the spec ({type(err).__name__})") from None


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader that refuses a mapping with the same key twice (PyYAML keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {shown(key)} (lines {seen[key]} and {line}): keep one",
                    key_node.start_mark,
                )
            seen[key] = line
        return super().construct_mapping(node, deep)


def _expanded_size(node: Any, sizes: dict[int, int]) -> int:
    """How many values ``node`` holds with every alias expanded, counting each shared
    container once (``sizes`` memoizes by identity): linear in the YAML text, not in its expansion."""
    if not isinstance(node, (dict, list)):
        return 1
    if id(node) not in sizes:
        sizes[id(node)] = 0  # a cycle (a recursive alias) is counted as it stands
        children = node.values() if isinstance(node, dict) else node
        sizes[id(node)] = 1 + sum(_expanded_size(child, sizes) for child in children)
    return sizes[id(node)]


def read_yaml(text: str, source: str) -> dict[str, Any]:
    """A spec's YAML text as a mapping: strict YAML (no duplicate keys, bounded anchors), or a
    :class:`SpecError` naming ``source``."""
    try:
        raw = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        kind = "" if problem.startswith("duplicate key") else "malformed YAML "
        raise SpecError(f"{source}: {where}{kind}({problem})" if kind else f"{source}: {where}{problem}") from None
    except RecursionError:
        raise SpecError(f"{source}: the YAML nests too deep") from None
    if not isinstance(raw, dict):
        raise SpecError(
            f"{source}: the spec must be a YAML mapping of sections (experiment, env, actor, ...), "
            f"got {type(raw).__name__}"
        )
    size = _expanded_size(raw, {})
    if size > MAX_SPEC_VALUES:
        raise SpecError(
            f"{source}: the spec expands to {size} values, more than {MAX_SPEC_VALUES} (YAML anchors and aliases "
            f"nested inside each other?): write it out without them"
        )
    return raw


def reject_non_finite(raw: Any, path: str, source: str, seen: set[int] | None = None) -> None:
    """YAML's .nan/.inf pass as floats: no spec number may be one. A container shared through
    YAML aliases is walked once."""
    if isinstance(raw, float) and not math.isfinite(raw):
        raise SpecError(f"{source}: {path}: {raw} is not a finite number")
    seen = set() if seen is None else seen
    if isinstance(raw, (dict, list)):
        if id(raw) in seen:
            return
        seen.add(id(raw))
    if isinstance(raw, dict):
        for k, v in raw.items():
            reject_non_finite(v, f"{path}.{k}" if path else str(k), source, seen)
    elif isinstance(raw, list):
        for i, v in enumerate(raw):
            reject_non_finite(v, f"{path}[{i}]", source, seen)
