"""Old import path of the calcfunctions, kept for code written against it: they now live next to the work chains
that use them, grouped by concept, in :mod:`aiida_mlip_trainer.workflows.functions`."""

from .workflows.functions.baseline import check_short_range, derive_baseline, subtract_baseline  # noqa: F401
from .workflows.functions.parameters import generate_training_parameters  # noqa: F401
from .workflows.functions.potential import (  # noqa: F401
    MIN_TEST_STRUCTURES,
    assemble_potential,
    png_file,
    potential_file,
    validate_potential,
)
from .workflows.functions.training_set import (  # noqa: F401
    import_training_set,
    split_training_set,
    training_set_from_file,
)
