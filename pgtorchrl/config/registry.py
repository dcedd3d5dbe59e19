"""Named component registries: what a spec can name, and the typed fields each name accepts.

A component is a factory function. Its positional parameters are *wiring* supplied by the
pipeline (the env's specs, the actor, the parameters to optimize); its keyword-only parameters are
the spec's fields, with their type annotations and defaults. From those keyword-only parameters
each entry derives a strict pydantic model, so a spec section is validated before anything is built.

A field's doc line (what ``pgtorchrl list --docs`` and the spec reference print) is written once,
where the field is: the ``description`` of its annotation's ``Field`` (a type shared by several
components carries its own), or else its entry in the factory docstring's Google-style
``Keyword Args:`` section (which the API reference renders too).
"""

from __future__ import annotations

import difflib
import inspect
import re
from dataclasses import dataclass
from typing import Annotated, Any, Callable, Iterable, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, create_model

__all__ = [
    "Registry",
    "Entry",
    "ComponentError",
    "UnknownComponentError",
    "STRICT",
    "DOCUMENTED",
    "keyword_docs",
    "keyword_section",
    "did_you_mean",
    "shown",
]

#: Config shared by every spec model: unknown keys are errors, and no silent type coercion
#: (``lr: "3e-4"`` is a string in YAML and must not pass as a float).
STRICT = ConfigDict(extra="forbid", strict=True)

#: STRICT, for the spec's hand-written sections: each field's docstring (the string literal under
#: it) becomes its ``description``, which ``pgtorchrl list`` and the spec reference print.
DOCUMENTED = ConfigDict(extra="forbid", strict=True, use_attribute_docstrings=True)


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


class ComponentError(ValueError):
    """A plugin's component (``module:callable``) failed when the pipeline called it."""


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


_SECTION = re.compile(r"^(\s*)Keyword Args:\s*$")


def keyword_docs(doc: str | None) -> dict[str, str]:
    """Each entry of ``doc``'s Google-style ``Keyword Args:`` section: name -> its text on one line.

    >>> keyword_docs('''Summary.
    ...
    ... Keyword Args:
    ...     gamma: the discount,
    ...         at most 1.
    ...     lmbda: GAE's lambda.
    ...
    ... Returns: nothing.''')
    {'gamma': 'the discount, at most 1.', 'lmbda': "GAE's lambda."}
    """
    docs: dict[str, list[str]] = {}
    lines = (doc or "").expandtabs().splitlines()  # relative indents: a raw or a cleaned docstring
    starts = [(i, m) for i, line in enumerate(lines) if (m := _SECTION.match(line))]
    if not starts:
        return {}
    start, header = starts[0]
    indent, entry = len(header.group(1)), None
    for line in lines[start + 1 :]:
        if not line.strip():
            continue
        depth = len(line) - len(line.lstrip())
        if depth <= indent:
            break  # the next section
        name, colon, text = line.strip().partition(":")
        if entry is None or depth <= entry:
            if not colon or not name.isidentifier():
                break
            entry, current = depth, docs.setdefault(name, [])
            current.append(text.strip())
        else:
            current.append(line.strip())
    return {name: " ".join(" ".join(parts).split()) for name, parts in docs.items()}


def keyword_section(docs: dict[str, str]) -> str:
    """The ``Keyword Args:`` section that :func:`keyword_docs` reads back as ``docs``.

    >>> keyword_docs(keyword_section({"lr": "the step size."}))
    {'lr': 'the step size.'}
    """
    return "Keyword Args:\n" + "".join(f"    {name}: {text}\n" for name, text in docs.items())


def _spec_model(kind: str, name: str, factory: Callable[..., Any]) -> type[BaseModel]:
    docs = keyword_docs(inspect.getdoc(factory))
    fields: dict[str, Any] = {"name": (Literal[name], ...)}
    for param in inspect.signature(factory).parameters.values():
        if param.kind is not inspect.Parameter.KEYWORD_ONLY:
            continue  # positional parameters are wiring, not spec fields
        annotation = param.annotation
        if annotation is inspect.Parameter.empty:
            annotation = Any
        elif isinstance(annotation, str):  # `from __future__ import annotations`
            annotation = eval(annotation, factory.__globals__)  # noqa: S307 (our own source code)
        if param.name in docs:
            annotation = Annotated[annotation, Field(description=docs[param.name])]
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

    def __init__(self, kind: str, wiring: tuple[str, ...] = (), base: tuple[str, str] | None = None):
        """``wiring``: what the pipeline passes a component of this kind positionally (its
        parameters before the spec's keyword-only fields); ``base``: ``(package, class name)`` of
        the class a component class of this kind must derive from (``("torch", "Optimizer")``),
        checked by name so that this layer imports no torch."""
        self.kind = kind
        self.wiring = wiring
        self.base = base
        self._entries: dict[str, Entry] = {}

    def factory_problem(self, factory: Any) -> str | None:
        """Why ``factory`` (a plugin's ``module:callable``) cannot be a component of this kind,
        checked before it is ever called (``None``: it can): it must be a class (derived from
        :attr:`base`) or a Python function, taking :attr:`wiring` positionally and the section's
        fields as keyword-only parameters. A built-in such as ``eval`` or ``os.system`` is none."""
        takes = f"({', '.join(self.wiring)}, *, fields...)" if self.wiring else "(*, fields...)"
        if not (inspect.isclass(factory) or inspect.isfunction(factory)):
            what = "a built-in function" if inspect.isbuiltin(factory) else f"a {type(factory).__name__}"
            return f"is {what}, not a component: write a class or a function {takes}"
        if inspect.isclass(factory) and self.base is not None:
            package, name = self.base
            if not any(c.__name__ == name and c.__module__.split(".")[0] == package for c in factory.__mro__):
                return (
                    f"is a class that does not derive from {package}'s {name}, which every {self.kind} component does"
                )
        try:
            signature = inspect.signature(factory)
            fields = [p.name for p in signature.parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY]
            signature.bind(*self.wiring, **dict.fromkeys(fields))
        except (TypeError, ValueError) as err:
            return f"cannot be called as {self.kind}{takes}: {err}"
        return None

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
        try:
            return self[config.name].factory(*wiring, **fields)
        except Exception as err:
            if ":" not in config.name:  # pgtorchrl's and TorchRL's own components say their errors themselves
                raise
            raise ComponentError(f"{self.kind}: {config.name!r} failed: {type(err).__name__}: {err}") from err
