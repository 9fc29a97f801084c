"""miragelab: is an emergent ability real, or an artefact of the metric?

The pipeline is ``sources -> samples -> metrics -> scores -> analysis -> report``;
see the README for the quick start and ``miragelab.tables`` for the data model.
"""

from miragelab.errors import InputError

__version__ = "0.1.0"
__all__ = ["InputError", "__version__"]
