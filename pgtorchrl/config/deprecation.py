"""The public API's deprecation rule, as code: a renamed or changed public name keeps working for
one minor version, with a :class:`DeprecationWarning` that names the replacement and the release
that removes it (see ``CHANGELOG.md``, "Deprecations").

>>> import warnings
>>> @renamed_keyword("size", "sizes", since="0.1", removed_in="0.2", convert=lambda n: [n])
... def layers(*, sizes=(64,)):
...     return list(sizes)
>>> with warnings.catch_warnings(record=True) as caught:
...     warnings.simplefilter("always")
...     layers(size=32)
[32]
>>> str(caught[0].message)
'layers(size=...) is deprecated since 0.1 and will be removed in 0.2: use sizes=... instead'
"""

from __future__ import annotations

import functools
import warnings
from typing import Any, Callable, TypeVar

__all__ = ["renamed_keyword"]

_F = TypeVar("_F", bound=Callable[..., Any])


def renamed_keyword(
    old: str, new: str, *, since: str, removed_in: str, convert: Callable[[Any], Any] = lambda value: value
) -> Callable[[_F], _F]:
    """Accept keyword ``old`` as ``new=convert(old)``, with a :class:`DeprecationWarning`; giving
    both is a :class:`TypeError`."""

    def decorator(func: _F) -> _F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if old in kwargs:
                if new in kwargs:
                    raise TypeError(f"{func.__name__}() got both {old}= (deprecated) and {new}=: pass only {new}=")
                warnings.warn(
                    f"{func.__name__}({old}=...) is deprecated since {since} and will be removed in "
                    f"{removed_in}: use {new}=... instead",
                    DeprecationWarning,
                    stacklevel=2,
                )
                kwargs[new] = convert(kwargs.pop(old))
            return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]  # the same signature, one keyword more

    return decorator
