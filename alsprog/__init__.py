"""alsprog: longitudinal disease-progression modelling in ALS.

Subpackages follow the pipeline: :mod:`alsprog.data` (validated long-format tables),
:mod:`alsprog.simulate` (synthetic cohorts).  Heavy libraries are imported lazily, so
``import alsprog`` stays fast.
"""

from alsprog._version import __version__

__all__ = ["__version__"]
