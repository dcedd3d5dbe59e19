"""Named component registries: what a spec can name, and the typed fields each name accepts.

A component is a factory function. Its positional parameters are *wiring* supplied by the
pipeline (the env's specs, the actor, the parameters to optimize); its keyword-only parameters are
the spec's fields, with their type annotations and defaults. From those keyword-only parameters
each entry derives a strict pydantic model, so a spec section is validated before anything is built.
"""

from __future__ import annotations

import difflib
import inspect
from dataclasses import dataclass
from typing import Annotated, Any, Callable, Iterable, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, create_model

__all__ = ["Registry", "Entry", "UnknownComponentError", "STRICT", "did_you_mean", "shown"]

#: Config shared by every spec model: unknown keys are errors, and no silent type coercion
#: (``lr: "3e-4"`` is a string in YAML and must not pass as a float).
STRICT = ConfigDict(extra="forbid", strict=True)


def shown(value: Any, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters: a one-line message never echoes a huge input.

    >>> shown("x" * 1000, limit=12)
    "'xxxxxxxxxx... (1002 characters)"
    """
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 1]}... ({len(text)} characters)"


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the nearest choice, or ``""``."""
    word = str(word)
    if len(word) > 200:  # nothing registered is that long: skip the quadratic comparison
        return ""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else ""


class UnknownComponentError(KeyError):
    """A spec named a component its registry does not hold."""

    def __init__(self, kind: str, name: str, choices: list[str]):
        self.message = f"unknown {kind} {shown(name)}{did_you_mean(name, choices)} (registered: {', '.join(choices)})"
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Entry:
    """A registered component: its factory and the pydantic model of its spec fields."""

    kind: str
    name: str
    factory: Callable[..., Any]
    model: type[BaseModel]

    @property
    def summary(self) -> str:
        return (inspect.getdoc(self.factory) or "").split("\n", 1)[0]


def _spec_model(kind: str, name: str, factory: Callable[..., Any]) -> type[BaseModel]:
    fields: dict[str, Any] = {"name": (Literal[name], ...)}
    for param in inspect.signature(factory).parameters.values():
        if param.kind is not inspect.Parameter.KEYWORD_ONLY:
            continue  # positional parameters are wiring, not spec fields
        annotation = param.annotation
        if annotation is inspect.Parameter.empty:
            annotation = Any
        elif isinstance(annotation, str):  # `from __future__ import annotations`
            annotation = eval(annotation, factory.__globals__)  # noqa: S307 (our own source code)
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[param.name] = (annotation, default)
    model = create_model(f"{kind}:{name}", __config__=STRICT, **fields)
    model.__doc__ = inspect.getdoc(factory)
    return model


class Registry:
    """Components of one kind (``env``, ``actor``, ``loss`` ...) by name.

    >>> optimizers = Registry("optim")
    >>> @optimizers.register("sgd")
    ... def sgd(params, *, lr: float = 0.1):
    ...     "Plain SGD."
    >>> optimizers["sdg"]
    Traceback (most recent call last):
    ...
    pgtorchrl.config.registry.UnknownComponentError: unknown optim 'sdg'; did you mean 'sgd'? (registered: sgd)
    """

    #: Bumped by every registration in any registry: a spec model built earlier is stale.
    version = 0

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def register(self, name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def decorator(factory: Callable[..., Any]) -> Callable[..., Any]:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._entries[name] = Entry(self.kind, name, factory, _spec_model(self.kind, name, factory))
            Registry.version += 1
            return factory

        return decorator

    def __getitem__(self, name: str) -> Entry:
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownComponentError(self.kind, name, self.names()) from None

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def names(self) -> list[str]:
        return sorted(self._entries)

    def entries(self) -> list[Entry]:
        return [self._entries[n] for n in self.names()]

    def spec_type(self) -> Any:
        """The spec type of a section of this kind: the discriminated union of every registered
        component's model, keyed by ``name``."""
        models = tuple(entry.model for entry in self.entries())
        union = models[0] if len(models) == 1 else Union[models]
        return Annotated[union, Field(discriminator="name")]

    def owners(self, field: str) -> list[str]:
        """The registered components that accept spec field ``field`` (for error hints)."""
        return [e.name for e in self.entries() if field in e.model.model_fields]

    def build(self, config: Any, *wiring: Any) -> Any:
        """Calls the factory that ``config.name`` names with the wiring and the spec's fields."""
        fields = {k: getattr(config, k) for k in type(config).model_fields if k != "name"}
        return self[config.name].factory(*wiring, **fields)
