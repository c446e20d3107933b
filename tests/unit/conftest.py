"""Make `ansible_collections.xenlab.migration` importable from a plain checkout."""

import os
import sys

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_COLLECTIONS = os.path.join(_ROOT, ".collections")
if _COLLECTIONS not in sys.path:
    sys.path.insert(0, _COLLECTIONS)

# Property tests draw the same examples on every run (CI included): a failure reproduces, and a
# green run does not depend on luck. XENLAB_HYPOTHESIS_RANDOM=1 explores new examples.
from hypothesis import settings  # noqa: E402  pylint: disable=wrong-import-position

settings.register_profile("xenlab", derandomize=os.environ.get("XENLAB_HYPOTHESIS_RANDOM") != "1")
settings.load_profile("xenlab")
