"""Watch a training (its pacemaker calculations and their learning curves) or an active-learning loop (its rounds),
also while they run."""

from __future__ import annotations

import tempfile

from aiida import orm

from .formats.pacemaker_output import last_iteration, read_metrics_table
from .formats.pacemaker_output import learning_curve as curve_from_tables

__all__ = (
    "calculation_versions",
    "fit_progress",
    "learning_curve",
    "loop_progress",
    "progress_line",
    "training_calculations",
)

_TRAIN = "aiida.calculations:mlip_trainer.pace_train"


def training_calculations(node: orm.ProcessNode) -> list[orm.CalcJobNode]:
    """The PaceTrainCalculations of a training (the node itself, or those a work chain called), oldest first."""
    if node.process_type == _TRAIN:
        return [node]
    found = [n for n in node.called_descendants if n.process_type == _TRAIN]
    return sorted(found, key=lambda n: n.ctime)


def _job_file(calc: orm.CalcJobNode, filename: str) -> str:
    """``filename`` from the retrieved files when finished, else from the running job's working directory."""
    if "retrieved" in calc.outputs:
        try:
            return calc.outputs.retrieved.base.repository.get_object_content(filename)
        except FileNotFoundError:
            return ""
    # A sealed calculation (finished, or imported from an archive) is never read from a remote folder: its
    # remote path is only a recorded string, and may name anything on the machine it points to.
    if "remote_folder" not in calc.outputs or calc.is_sealed:
        return ""
    with tempfile.NamedTemporaryFile() as handle:
        try:
            calc.outputs.remote_folder.getfile(filename, handle.name)
        except OSError:
            return ""
        return open(handle.name, encoding="utf8").read()


def learning_curve(calc: orm.CalcJobNode) -> dict[str, list[dict]]:
    """The learning curve of a PaceTrainCalculation so far, train and test (see
    :func:`aiida_mlip_trainer.formats.pacemaker_output.learning_curve`)."""
    return curve_from_tables(
        read_metrics_table(_job_file(calc, "metrics.txt")),
        read_metrics_table(_job_file(calc, "test_metrics.txt")),
    )


def fit_progress(calc: orm.CalcJobNode) -> dict | None:
    """Where a PaceTrainCalculation's fit is, from pacemaker's ``log.txt`` (the running job's working directory, or
    the retrieved files once finished): :func:`~aiida_mlip_trainer.formats.pacemaker_output.last_iteration` and
    ``maxiter`` (from its parameters; None when not given); None before the first iteration."""
    progress = last_iteration(_job_file(calc, "log.txt"))
    if progress is None:
        return None
    parameters = calc.inputs.parameters.get_dict() if "parameters" in calc.inputs else {}
    maxiter = parameters.get("fit", {}).get("maxiter")
    return {**progress, "maxiter": maxiter if isinstance(maxiter, int) else None}


def fit_words(progress: dict) -> str:
    """``iteration 12/100, loss 1.23e-04, train E 3.1 meV/atom, F 11.5 meV/Å`` of :func:`fit_progress`."""
    of = f"/{progress['maxiter']}" if progress["maxiter"] else ""
    return (
        f"iteration {progress['iteration']}{of}, loss {progress['loss']:.3g}, train E {progress['energy_rmse']:.3g} "
        f"meV/atom, F {progress['force_rmse']:.3g} meV/Å"
    )


def _running_fit(node: orm.ProcessNode) -> str | None:
    """The running pacemaker fit under ``node`` (or ``node`` itself) in words, None when none runs."""
    for calc in reversed(training_calculations(node)):
        if not calc.is_terminated:
            progress = fit_progress(calc)
            where = f"{calc.process_label}<{calc.pk}>"
            return f"fit {where}: {fit_words(progress)}" if progress else f"fit {where}: starting"
    return None


def progress_line(node: orm.ProcessNode) -> str:
    """One short line on where a training or an active-learning loop is now: the round and step of a loop, the jobs
    running and the iteration and loss of a running fit (from pacemaker's log)."""
    state = node.process_state.value if node.process_state else "created"
    if node.is_terminated:
        return f"{node.process_label}<{node.pk}>: {state}"
    parts = [f"{node.process_label}<{node.pk}>"]
    running = [n for n in node.called_descendants if not n.is_terminated]
    if node.process_label == "ActiveLearningWorkChain":
        steps = [label for label, _ in loop_progress(node)["running"]]
        if steps:
            parts.append(f"round {steps[0].rsplit('_', 1)[-1]}: {steps[0].rsplit('_', 1)[0]}")
    jobs = [n for n in running if isinstance(n, orm.CalcJobNode)]
    if jobs:
        parts.append("running " + ", ".join(f"{n.process_label}<{n.pk}>" for n in jobs))
    fit = _running_fit(node)
    if fit:
        parts.append(fit)
    return "; ".join(parts)


def calculation_versions(calc: orm.CalcJobNode) -> dict[str, str | None]:
    """The versions of python-ace, tensorpotential, TensorFlow, ... a pacemaker-tool calculation ran with: its
    ``versions`` output, or while it runs the ``versions.json`` its job wrote; ``{}`` when unknown."""
    from .calculations.versions import VERSIONS_FILENAME, read_versions

    if "versions" in calc.outputs:
        return calc.outputs.versions.get_dict()
    return read_versions(_job_file(calc, VERSIONS_FILENAME)) or {}


def loop_progress(node: orm.WorkflowNode) -> dict:
    """Where an ``ActiveLearningWorkChain`` stands, from the processes it called (their link labels ``training_<k>``,
    ``exploration_<k>``, ``labeling_<k>``, ``initial_labeling``), so also while it runs: ``rounds`` (the rows of
    :func:`~aiida_mlip_trainer.workflows.functions.learning_curve.curve_rows` for every finished fit), ``reference``
    (the held-out set's force RMS in meV/Å and energy spread in meV/atom, from the first fit), ``rises`` (for each
    round whose held-out force error rose, why: :func:`~aiida_mlip_trainer.workflows.functions.learning_curve.
    explain_rises`), ``running`` (the called processes not yet finished, as ``(link label, node)``) and
    ``stop_reason`` (once it finished)."""
    from aiida.common.links import LinkType

    from .workflows.functions.learning_curve import curve_rows, explain_rises

    links = node.base.links.get_outgoing(link_type=(LinkType.CALL_WORK, LinkType.CALL_CALC)).all()
    called = {link.link_label: link.node for link in links}
    metrics, structures, explorations, labelings, trainings = [], [], {}, {}, []
    k = 0
    while f"training_{k}" in called and "metrics" in called[f"training_{k}"].outputs:
        training = called[f"training_{k}"]
        trainings.append(training)
        metrics.append(training.outputs.metrics.get_dict())
        structures.append(training.inputs.training_set.num_structures)
        exploration, labeling = called.get(f"exploration_{k}"), called.get(f"labeling_{k}")
        if exploration is not None and "summary" in exploration.outputs:
            explorations[k] = exploration.outputs.summary.get_dict()
        if labeling is not None and "failures" in labeling.outputs:
            labelings[k] = labeling.outputs.failures.get_dict()
        k += 1
    initial = called.get("initial_labeling")
    initial_calls = None
    if initial is not None and "failures" in initial.outputs:
        initial_calls = initial.outputs.failures.get_dict()
    reference = metrics[0].get("reference", {}) if metrics else {}
    rounds = curve_rows(metrics, structures, explorations, labelings, initial_calls)
    rises = [k for k in range(1, len(rounds)) if rounds[k]["force_rmse"] > rounds[k - 1]["force_rmse"]]
    return {
        "rounds": rounds,
        "rises": explain_rises(_rise_evidence(trainings, metrics)) if rises else {},
        "reference": {
            "force_component_rms": reference.get("force_component_rms"),
            "energy_per_atom_std": reference.get("energy_per_atom_std"),
        },
        "running": sorted((label, n) for label, n in called.items() if not n.is_terminated),
        "stop_reason": node.outputs.summary["stop_reason"] if "summary" in node.outputs else None,
    }


def _energies_per_atom(training_set) -> list[float]:
    arrays = training_set.get_arrays()
    return [float(e) for e in arrays["energy"] / arrays["natoms"]]


def _rise_evidence(trainings: list, metrics: list[dict]) -> list[dict]:
    """What :func:`~aiida_mlip_trainer.workflows.functions.learning_curve.explain_rises` looks at, per fitted round:
    its error, its held-out set (size, content hash, energies per atom) and the energies per atom of the training
    structures that were not in the previous round's training set."""
    from collections import Counter

    evidence, previous = [], Counter()
    for training, errors in zip(trainings, metrics, strict=True):
        test = training.inputs.test_set if "test_set" in training.inputs else None
        energies = _energies_per_atom(training.inputs.training_set)
        known = Counter(previous)
        added = []
        for energy in energies:  # a multiset difference: structures are labelled once, so equal energies are rare
            if known[energy] > 0:
                known[energy] -= 1
            else:
                added.append(energy)
        evidence.append(
            {
                "force_rmse": float(errors["force_rmse"]),
                "test_structures": errors.get("num_structures", test.num_structures if test is not None else None),
                "test_set": test.content_hash if test is not None else None,
                "test_energies": _energies_per_atom(test) if test is not None and test.labelled else None,
                "added_energies": added if evidence else None,
            }
        )
        previous = Counter(energies)
    return evidence
