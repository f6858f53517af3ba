"""Old import path of :mod:`aiida_mlip_trainer.physics.reference_data`, kept for code written against it."""

import sys

from .physics import reference_data as _module

sys.modules[__name__] = _module
