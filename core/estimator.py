"""The one estimator parameter base of GenEdge (scikit-learn / sktime conventions), torch-free.

Every trainable model (the RUL estimators of :mod:`models`, the generators of :mod:`synth`)
derives from :class:`BaseEstimator`, which holds what they share:

* ``__init__`` only stores hyper-parameters, unchanged, under the same names;
  :meth:`~BaseEstimator.get_params` / :meth:`~BaseEstimator.set_params` work from its signature.
* Learned state ends in ``_``; :meth:`~BaseEstimator.reset` deletes it, :meth:`~BaseEstimator.set_params`
  and :meth:`~BaseEstimator.clone` never carry it over, and a subclass's ``fit`` sets
  ``is_fitted_ = True`` when it completes.
* :attr:`~BaseEstimator.is_fitted` (a property) says whether it did;
  :meth:`~BaseEstimator.check_is_fitted` raises :class:`~core.errors.NotFittedError` otherwise.
* The classmethod :meth:`~BaseEstimator.get_test_params` gives tiny, fast parameter sets for the
  shared conformance test (``tests/core/test_estimator_conformance.py``).

A parameter whose value is itself an estimator is nested, as in scikit-learn: ``get_params()``
also lists its parameters as ``<name>__<param>``, ``set_params`` takes them under those names, and
:func:`clone` clones it rather than copying its fitted state.
"""

from __future__ import annotations

import copy
import inspect
import reprlib
from collections import defaultdict
from typing import Any, ClassVar, Self, TypeVar

from core.errors import ModelError, NotFittedError

__all__ = ["BaseEstimator", "clone"]

_E = TypeVar("_E", bound="BaseEstimator")

# long parameter values (kinematics tables, condition features) are abbreviated in repr
_REPR = reprlib.Repr()
_REPR.maxdict, _REPR.maxlist, _REPR.maxtuple, _REPR.maxset = 4, 8, 8, 8
_REPR.maxstring = _REPR.maxother = 200


class BaseEstimator:
    """Hyper-parameters, fitted state and test parameters of an estimator.

    Subclasses define ``__init__`` with keyword parameters stored unchanged under the same names,
    and their domain API (``fit``/``predict``, ``fit``/``sample``) on top.

    Attributes:
        is_fitted_: set to ``True`` by the subclass's ``fit`` once it completes.
    """

    _tags: ClassVar[dict[str, Any]] = {}

    is_fitted_: bool

    # -- parameters -------------------------------------------------------------------------
    @classmethod
    def _get_param_names(cls) -> list[str]:
        """Names of the ``__init__`` parameters, sorted."""
        signature = inspect.signature(cls.__init__)
        return sorted(
            name
            for name, p in signature.parameters.items()
            if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        )

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Return the hyper-parameters given to ``__init__``.

        Args:
            deep: also list the parameters of nested estimators as ``<name>__<param>``.

        Returns:
            Mapping of parameter name to value.
        """
        params: dict[str, Any] = {}
        for name in self._get_param_names():
            value = getattr(self, name)
            params[name] = value
            if deep and isinstance(value, BaseEstimator):
                params.update((f"{name}__{key}", inner) for key, inner in value.get_params(deep=True).items())
        return params

    def set_params(self, **params: Any) -> Self:
        """Set hyper-parameters and forget any fitted state.

        Args:
            **params: parameter names and new values; ``<name>__<param>`` sets a parameter of the
                nested estimator ``<name>``.

        Returns:
            ``self``.

        Raises:
            ModelError: if a name is not a parameter of this estimator (the message names it and
                the valid ones); nothing is set then.
        """
        valid = self._get_param_names()
        own: dict[str, Any] = {}
        nested: defaultdict[str, dict[str, Any]] = defaultdict(dict)
        for key, value in params.items():
            name, _, inner = key.partition("__")
            if name not in valid:
                raise ModelError(f"invalid parameter {name!r} for {type(self).__name__}; expected one of {valid}")
            if not inner:
                own[name] = value
            elif isinstance(getattr(self, name), BaseEstimator):
                nested[name][inner] = value
            else:
                raise ModelError(
                    f"invalid parameter {key!r} for {type(self).__name__}: {name!r} is a "
                    f"{type(getattr(self, name)).__name__}, not an estimator with parameters"
                )
        for name, value in own.items():
            setattr(self, name, value)
        for name, inner_params in nested.items():
            getattr(self, name).set_params(**inner_params)
        return self.reset()

    def clone(self) -> Self:
        """Return an unfitted estimator with copies of the same hyper-parameters (nested estimators cloned)."""
        params = {
            name: value.clone() if isinstance(value, BaseEstimator) else copy.deepcopy(value)
            for name, value in self.get_params(deep=False).items()
        }
        return type(self)(**params)

    def reset(self) -> Self:
        """Delete all fitted state (attributes ending in ``_``)."""
        for name in [k for k in vars(self) if k.endswith("_") and not k.startswith("__")]:
            delattr(self, name)
        return self

    @classmethod
    def get_test_params(cls) -> list[dict[str, Any]]:
        """Return tiny, fast parameter sets for the conformance tests."""
        return [{}]

    @classmethod
    def create_test_instances(cls) -> list[Self]:
        """Instantiate the estimator with each of :meth:`get_test_params`."""
        return [cls(**params) for params in cls.get_test_params()]

    def __repr__(self) -> str:
        args = ", ".join(
            f"{name}={value!r}" if isinstance(value, BaseEstimator) else f"{name}={_REPR.repr(value)}"
            for name, value in self.get_params(deep=False).items()
        )
        return f"{type(self).__name__}({args})"

    # -- fitted state -----------------------------------------------------------------------
    @property
    def is_fitted(self) -> bool:
        """Whether ``fit`` has completed (and no parameter changed since)."""
        return bool(getattr(self, "is_fitted_", False))

    def check_is_fitted(self) -> None:
        """Raise :class:`~core.errors.NotFittedError` unless the estimator is fitted."""
        if not self.is_fitted:
            raise NotFittedError(f"this {type(self).__name__} instance is not fitted yet; call fit(X, y) first")


def clone(estimator: _E) -> _E:
    """Return an unfitted copy of ``estimator`` with the same hyper-parameters."""
    return estimator.clone()
