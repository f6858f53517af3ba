"""Old import path of :mod:`aiida_mlip_trainer.physics.baselines`, kept for code written against it."""

import sys

from .physics import baselines as _module

sys.modules[__name__] = _module
