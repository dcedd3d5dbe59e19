"""A pydantic validation error of a spec as one line: the key path as the user wrote it (the
union tag pydantic inserts after a component section dropped), what is wrong, and the nearest
valid name or key (a "did you mean", or the components that accept a misplaced field)."""

from __future__ import annotations

import math
import re
from typing import Any, Mapping

from pgtorchrl.components import REGISTRIES
from pgtorchrl.config.registry import did_you_mean, shown
from pgtorchrl.pipeline.schema import FIXED_SECTIONS, Spec

__all__ = ["format_error", "fields_at"]


def fields_at(loc: tuple) -> list[str]:
    """The keys a spec accepts at a location (for "did you mean" hints)."""
    if not loc:
        return list(Spec.model_fields)
    section = loc[0]
    if section in REGISTRIES and len(loc) >= 2 and loc[1] in REGISTRIES[section]:
        return list(REGISTRIES[section][loc[1]].model.model_fields)
    if section in FIXED_SECTIONS:
        return list(FIXED_SECTIONS[section].model_fields)
    return []


def _as_number(value: Any) -> float | None:
    """``value`` as a finite float where it is a float, or text that reads as one, else ``None``."""
    if isinstance(value, bool) or not isinstance(value, (str, float)):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def format_error(err: Mapping[str, Any]) -> str:
    """One pydantic error (an item of ``ValidationError.errors()``) as one line: its key path, what
    is wrong and, for an unknown key or name, the nearest valid one."""
    loc = tuple(err["loc"])
    kind = err["type"]
    ctx = err.get("ctx", {})
    # Drop the union tag pydantic inserts after a component section (optim.adam.lr -> optim.lr).
    parts = [p for i, p in enumerate(loc) if not (i == 1 and loc[0] in REGISTRIES)]
    path = ".".join(str(p) for p in parts) or "(top level)"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        section = str(loc[0])
        names = REGISTRIES[section].names()
        given = ctx.get("tag")
        if given is None:
            return f"{section}.name: missing; name a registered {REGISTRIES[section].kind}: {', '.join(names)}"
        return (
            f"{section}.name: unknown {REGISTRIES[section].kind} "
            f"{shown(given)}{did_you_mean(given, names)} (registered: {', '.join(names)})"
        )
    if kind == "extra_forbidden":
        known = fields_at(loc[:-1])
        hint = did_you_mean(loc[-1], known)
        if not hint and len(loc) == 3 and loc[0] in REGISTRIES:  # a field another component of the section has
            owners = REGISTRIES[loc[0]].owners(str(loc[-1]))
            if owners:
                accepts = "accepts" if len(owners) == 1 else "accept"
                hint = f" for {REGISTRIES[loc[0]].kind} {loc[1]!r}; {', '.join(map(repr, owners))} {accepts} it"
        return f"{path}: unknown key{hint} (accepted: {', '.join(known)})"
    if kind == "missing":
        return f"{path}: missing required key"
    msg = err["msg"]
    value = err.get("input")
    number = _as_number(value)
    if kind == "int_type" and number is not None:  # 1.0e+5 (a float) or 1.0e5 (text, to YAML) for an integer
        got = f"the string {shown(value)}" if isinstance(value, str) else shown(value)
        example = f", e.g. {int(number)}" if number.is_integer() and abs(number) < 1e18 else ""
        msg += f"; got {got} (write an integer{example})"
    elif kind == "float_type" and isinstance(value, str) and number is not None:
        msg += f"; got the string {shown(value)} (YAML reads 3e-4 as text: write 3.0e-4)"
    elif kind not in ("value_error",) and not isinstance(value, (dict, list)):
        msg += f", got {shown(value)}"
        if kind == "literal_error" and isinstance(value, str):  # e.g. per_step_solver: fixed_pont
            msg += did_you_mean(value, re.findall(r"'([^']*)'", str(ctx.get("expected", ""))))
    return f"{path}: {msg.removeprefix('Value error, ')}"
