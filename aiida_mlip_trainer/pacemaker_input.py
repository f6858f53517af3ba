"""Old import path of :mod:`aiida_mlip_trainer.formats.pacemaker_input`, kept for code written against it."""

import sys

from .formats import pacemaker_input as _module

sys.modules[__name__] = _module
