"""Old import path of :mod:`aiida_mlip_trainer.physics.short_range`, kept for code written against it."""

import sys

from .physics import short_range as _module

sys.modules[__name__] = _module
