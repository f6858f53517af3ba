"""The YAML file of ``aiida-mlip-trainer learn``: its keys and the builder it gives (through
``ActiveLearningWorkChain.get_builder_from_protocol``), with the oracle described in a few keys."""

from __future__ import annotations

import pathlib
from typing import Any

from aiida import orm

from ..calculations.job_options import check_data_options, check_options_in
from ..data import TrainingSetData
from .yaml_keys import LEARNING_KEYS

__all__ = ("LEARNING_INPUT_KEYS", "learning_builder_from_yaml")


LEARNING_INPUT_KEYS = tuple(LEARNING_KEYS)
ORACLE_TYPES = ("ase", "cp2k", "qe")
QE_ORACLE_KEYS = ("elements", "protocol", "overrides", "options")
ASE_ORACLE_KEYS = ("calculator", "parameters", "options")
# Where job-script text is set instead of a YAML file: typed in Python on the builder.
PYTHON_OPTIONS_HINT = (
    "in Python on the builder of ActiveLearningWorkChain.get_builder_from_protocol(...), e.g. "
    "builder.exploration.metadata.options.prepend_text or builder.training.training.pace.metadata.options"
)
ORACLE_OPTIONS_HINT = "in Python with builder.labeling.oracle_job_options (a plain dict, never stored)"


def _oracle_from_yaml(oracle: Any, where: str) -> dict:
    """An oracle description from its YAML mapping: ``{type: ase, code, calculator, parameters, options}`` or
    ``{type: cp2k, code, elements, kpoint_distance, options, <cp2k_parameters settings>}`` or
    ``{type: qe, code, elements, protocol, overrides, options}`` (:func:`~aiida_mlip_trainer.oracles.qe_oracle`)."""
    from ..oracles import ase_oracle, cp2k_oracle, qe_oracle

    if not isinstance(oracle, dict) or oracle.get("type") not in ORACLE_TYPES:
        raise ValueError(f"{where}: `oracle` must be a mapping with type ase, cp2k or qe (and code, ...)")
    if "code" not in oracle:
        raise ValueError(f"{where}: `oracle` needs the code label of the oracle (code: ...)")
    oracle = dict(oracle)
    kind, code = oracle.pop("type"), orm.load_code(oracle.pop("code"))
    if kind == "ase":
        unknown = sorted(set(oracle) - set(ASE_ORACLE_KEYS))
        if unknown:
            raise ValueError(f"{where}: unknown oracle key(s) {unknown}; allowed: calculator, parameters, options")
        if "calculator" not in oracle:
            raise ValueError(f"{where}: the ase oracle needs `calculator` (emt, lj, ...)")
        return ase_oracle(code, oracle["calculator"], oracle.get("parameters"), oracle.get("options"))
    if "elements" not in oracle:
        raise ValueError(f"{where}: the {kind} oracle needs `elements` (the elements of the structures)")
    try:
        if kind == "qe":
            unknown = sorted(set(oracle) - set(QE_ORACLE_KEYS))
            if unknown:
                raise ValueError(f"unknown qe oracle key(s) {unknown}; allowed: {', '.join(QE_ORACLE_KEYS)}")
            return qe_oracle(code, oracle.pop("elements"), **oracle)
        return cp2k_oracle(code, oracle.pop("elements"), **oracle)
    except (TypeError, ValueError) as exc:  # settings are checked by the oracle: say which file they came from
        raise ValueError(f"{where}: oracle: {exc}") from None


def learning_builder_from_yaml(path: str | pathlib.Path):
    """An ``ActiveLearningWorkChain`` builder from a YAML file, through its ``get_builder_from_protocol``.

    Keys: ``codes`` (pacemaker, pace_activeset, pace_yaml2yace, pace_select, explore → code labels; with ``trainer:
    gracemaker`` gracemaker, pace_activeset, pace_select, explore), ``trainer`` (``pacemaker``, the default, or
    ``gracemaker``: every round a GRACE-FS fit with stress in the loss), ``structures``
    (pk or UUID of a TrainingSetData), ``exploration`` (the parameters of ExplorationCalculation),
    ``exploration_protocol`` (a shipped one by name, ``copper``, ``cuni`` or ``silicon``, or a YAML file, relative to
    this one:
    generators and conditions; ``exploration`` overrides its parameters), ``generators`` (structure generators of the
    starting structures, instead of the protocol's), ``validation_structures`` (pk or UUID: their γ is reported every
    round, and the loop is not converged while any extrapolates), ``oracle``
    (``{type: ase, code, calculator}``, ``{type: cp2k, code, elements, ...}`` or ``{type: qe, code, elements, ...}``),
    optional ``test_set`` and ``explore_from`` (pk or UUID), ``protocol``, ``overrides`` (merged into the protocol,
    e.g. ``{selection: {max_structures: 20}, labeling: {max_concurrent: 4}, training: {training: {max_iterations:
    2}}}``),
    ``options``, and the loop's ``max_rounds``, ``max_oracle_calls``, ``target_force_rmse``,
    ``explore_count``, ``test_fraction``, ``seed``, ``fine_tune``, ``fine_tune_maxiter``; for every fit
    ``physics_baseline`` (e.g. ``{type: zbl}``: windows from the data) and ``short_range_check`` (``error``,
    ``warning`` or ``none``). Unknown keys are refused.

    A YAML file is data: ``options``, ``oracle.options`` and any ``metadata.options`` inside ``overrides``
    hold only scheduler requests (resources, max_wallclock_seconds, queue_name, account, qos, max_memory_kb,
    withmpi, thread counts); job-script text (prepend_text, append_text, ...) is set in Python on the builder
    (``builder.labeling.oracle_job_options`` for the oracle jobs)."""
    import yaml

    from ..workflows.active_learning import ActiveLearningWorkChain
    from ..workflows.training import TRAINERS

    path = pathlib.Path(path)
    spec = yaml.safe_load(path.read_text()) or {}
    if not isinstance(spec, dict):
        raise ValueError(f"{path}: expected a mapping of ActiveLearningWorkChain inputs")
    unknown = sorted(set(spec) - set(LEARNING_INPUT_KEYS))
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {unknown}; allowed: {', '.join(LEARNING_INPUT_KEYS)}")
    for key in ("codes", "structures"):
        if key not in spec:
            raise ValueError(f"{path}: `{key}` is missing (see `aiida-mlip-trainer learn launch --help`)")
    if "exploration" not in spec and "exploration_protocol" not in spec:
        raise ValueError(
            f"{path}: `exploration` or `exploration_protocol` is missing (see `aiida-mlip-trainer learn launch --help`)"
        )
    if not isinstance(spec["codes"], dict):
        raise ValueError(f"{path}: `codes` must map tool names (pacemaker, pace_select, explore, ...) to code labels")
    trainer = spec.pop("trainer", "pacemaker")
    if trainer not in TRAINERS:
        raise ValueError(f"{path}: trainer must be one of {', '.join(TRAINERS)}, got {trainer!r}")
    if trainer not in spec["codes"]:
        raise ValueError(f"{path}: trainer {trainer} needs its code: `codes` must map `{trainer}` to a label")
    if not isinstance(spec.get("exploration", {}), dict):
        raise ValueError(f"{path}: `exploration` must be a mapping of exploration parameters (temperatures, ...)")
    oracle_options = spec["oracle"].get("options") if isinstance(spec.get("oracle"), dict) else None
    message = (
        check_data_options(spec.get("options"), f"{path}: options", PYTHON_OPTIONS_HINT)
        or check_data_options(oracle_options, f"{path}: oracle.options", ORACLE_OPTIONS_HINT)
        or check_options_in(spec.get("overrides"), f"{path}: overrides", PYTHON_OPTIONS_HINT)
    )
    if message is not None:
        raise ValueError(message)
    structures = orm.load_node(spec.pop("structures"))
    if not isinstance(structures, TrainingSetData):
        raise ValueError(f"{path}: `structures` is a {structures.__class__.__name__}, not a TrainingSetData")
    oracle = _oracle_from_yaml(spec.pop("oracle"), str(path)) if "oracle" in spec else None
    extra: dict[str, Any] = {
        key: orm.load_node(spec.pop(key))
        for key in ("test_set", "explore_from", "validation_structures")
        if key in spec
    }
    if "generators" in spec:
        if not isinstance(spec["generators"], list):
            raise ValueError(f"{path}: `generators` must be a list of {{type: strain, strains: [...]}}, ...")
        extra["generators"] = orm.List(spec.pop("generators"))
    exploration_protocol = spec.pop("exploration_protocol", None)
    if exploration_protocol is not None and pathlib.Path(str(exploration_protocol)).suffix:
        exploration_protocol = path.parent / str(exploration_protocol)
    for key in ("max_rounds", "max_oracle_calls", "explore_count", "seed", "fine_tune_maxiter"):
        if key in spec:
            extra[key] = orm.Int(spec.pop(key))
    for key in ("target_force_rmse", "test_fraction"):
        if key in spec:
            extra[key] = orm.Float(spec.pop(key))
    if "fine_tune" in spec:
        extra["fine_tune"] = orm.Bool(spec.pop("fine_tune"))
    baseline, short_range = spec.pop("physics_baseline", None), spec.pop("short_range_check", None)
    if baseline is not None and not isinstance(baseline, dict):
        raise ValueError(f"{path}: `physics_baseline` must be a mapping such as {{type: zbl}}")
    builder = ActiveLearningWorkChain.get_builder_from_protocol(
        spec.pop("codes"),
        structures,
        spec.pop("exploration", None),
        spec.pop("protocol", None),
        spec.pop("overrides", None),
        exploration_protocol=exploration_protocol,
        oracle=oracle,
        options=spec.pop("options", None),
        trainer=trainer,
        **extra,
    )
    if baseline is not None:
        builder.training.physics_baseline = orm.Dict(baseline)  # checked by TrainingWorkChain before any job
    if short_range is not None:
        builder.training.short_range_check = orm.Str(str(short_range))
    return builder
