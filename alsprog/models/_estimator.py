"""scikit-learn's estimator parameter protocol without importing scikit-learn.

Owns: :class:`EstimatorParams`, the base of models that must stay quick to import
(:class:`~alsprog.models.LinearMixedModel`): ``get_params``, ``set_params`` and an
sklearn-style ``repr``.  Importing :mod:`sklearn.base` costs 0.5-1.4 s in a fresh
process (``sklearn.utils.fixes`` imports ``scipy.stats`` and ``scipy.sparse.linalg``),
more than a whole first fit of a 1,000-subject mixed model (``benchmarks/lmm.py``,
cold start), so such models implement the protocol here instead of subclassing
``sklearn.base.BaseEstimator``.
Leaves: everything else (fitting, checks) to the models.
"""

from __future__ import annotations

import inspect
from typing import Any

from alsprog.errors import ModelSpecificationError

__all__ = ["EstimatorParams"]


class EstimatorParams:
    """Base class giving scikit-learn's parameter protocol to a model.

    ``get_params``, ``set_params`` and ``repr`` behave as in
    :class:`sklearn.base.BaseEstimator`, so :func:`sklearn.base.clone` and
    scikit-learn's model-selection tools work on subclasses.  Parameters are the
    keyword names of the subclass's ``__init__``, stored unchanged as attributes.

    Examples
    --------
    >>> class Demo(EstimatorParams):
    ...     def __init__(self, formula, *, reml=True):
    ...         self.formula = formula
    ...         self.reml = reml
    >>> d = Demo("y ~ x", reml=False)
    >>> d
    Demo(formula='y ~ x', reml=False)
    >>> d.set_params(reml=True).get_params()
    {'formula': 'y ~ x', 'reml': True}
    """

    @classmethod
    def _get_param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return sorted(
            p.name
            for p in sig.parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        )

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Parameters of this estimator, as scikit-learn's ``get_params``.

        Parameters
        ----------
        deep : bool, default True
            Also return the parameters of parameters that are estimators.

        Returns
        -------
        dict
            Parameter name -> value.
        """
        out: dict[str, Any] = {}
        for key in self._get_param_names():
            value = getattr(self, key)
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                out.update((f"{key}__{k}", v) for k, v in value.get_params().items())
            out[key] = value
        return out

    def set_params(self, **params: Any) -> Any:
        """Set parameters, as scikit-learn's ``set_params``.

        Parameters
        ----------
        **params
            New values by name.

        Returns
        -------
        self

        Raises
        ------
        ModelSpecificationError
            For a name that is not a parameter.
        """
        valid = self._get_param_names()
        for key, value in params.items():
            if key not in valid:
                raise ModelSpecificationError(
                    f"Invalid parameter {key!r} for {type(self).__name__}; valid "
                    f"parameters are {', '.join(valid)}."
                )
            setattr(self, key, value)
        return self

    def __repr__(self) -> str:
        sig = inspect.signature(type(self).__init__)
        shown = []
        for name, p in sig.parameters.items():
            if name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            value = getattr(self, name, None)
            default = p.default
            if (
                default is p.empty
                or type(value) is not type(default)
                or value != default
            ):
                shown.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(shown)})"
