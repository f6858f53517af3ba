"""The keys of the YAML files of ``train launch`` and ``learn launch``, with what each holds: the one list that the
readers (``training_yaml``, ``learning_yaml``), their unknown-key message and the commands' ``--help`` use."""

from __future__ import annotations

__all__ = ("LEARNING_KEYS", "TRAINING_KEYS", "keys_help")

# TrainingWorkChain.get_builder_from_protocol, from `train launch`'s YAML file.
TRAINING_KEYS = {
    "codes": "tool name -> code label (pacemaker, pace_select, pace_activeset, pace_yaml2yace)",
    "trainer": "pacemaker (default, ACE) or gracemaker (GRACE-FS, stress fitted; codes gracemaker, pace_activeset)",
    "training_set": "label, pk or UUID of a labelled TrainingSetData",
    "structures_file": "or: a structures file inside the YAML file's folder",
    "test_set": "label, pk or UUID of the held-out TrainingSetData (else test_fraction)",
    "previous_potential": "pk or UUID of a PacePotentialData to fine-tune from",
    "protocol": "fast, moderate or precise",
    "overrides": "merged into the protocol, e.g. {test_fraction: 0.2, selection: {max_structures: 100}}",
    "options": "scheduler requests of every job (resources, max_wallclock_seconds, queue_name, account, ...)",
    "physics_baseline": "e.g. {type: zbl}: a ZBL window per element pair, from the data",
    "short_range_check": "error (default), warning or none",
}
# ActiveLearningWorkChain.get_builder_from_protocol, from `learn launch`'s YAML file.
LEARNING_KEYS = {
    "codes": "tool name -> code label (pacemaker, pace_select, pace_activeset, pace_yaml2yace, explore)",
    "trainer": "pacemaker (default, ACE) or gracemaker (GRACE-FS every round; codes gracemaker, not pacemaker, yace)",
    "structures": "label, pk or UUID of the initial TrainingSetData (unlabelled: the oracle labels it first)",
    "test_set": "label, pk or UUID of the fixed held-out TrainingSetData (else test_fraction)",
    "explore_from": "label, pk or UUID of the structures MD starts from (default: the training data)",
    "protocol": "fast, moderate or precise: the loop's and every round's fit, selection and labelling",
    "overrides": "merged into the protocol, e.g. {selection: {max_structures: 5}, labeling: {max_concurrent: 2}}",
    "options": "scheduler requests of every job (resources, max_wallclock_seconds, queue_name, account, ...)",
    "exploration": "the MD: temperatures, steps, gamma_collect, gamma_halt, ...",
    "exploration_protocol": "copper, cuni, silicon or a YAML file: generators, conditions (exploration overrides it)",
    "generators": "structure generators instead of the protocol's, e.g. [{type: vacancy, seed: 1}]",
    "validation_structures": "label, pk or UUID: their γ every round; not converged while one extrapolates",
    "oracle": "{type: ase, code, calculator}, {type: cp2k, code, elements, ...} or {type: qe, code, elements, ...}",
    "max_rounds": "at most this many fits",
    "max_oracle_calls": "at most this many labels",
    "target_force_rmse": "stop when the held-out force RMSE (meV/Å) is at most this",
    "explore_count": "MD from this many structures per round",
    "test_fraction": "held out of the initial data when there is no test_set",
    "seed": "of the split and the MD",
    "fine_tune": "true (default): each round starts from the previous potential",
    "fine_tune_maxiter": "BFGS iterations of each fine-tune (default: the protocol's; the first fit keeps its own)",
    "physics_baseline": "e.g. {type: zbl}: every fit on a ZBL baseline, a window per element pair",
    "short_range_check": "error (default), warning or none",
}


def keys_help(keys: dict[str, str]) -> str:
    """The keys as ``--help`` shows them: one a line, unwrapped (click's ``\\b``)."""
    width = max(map(len, keys))
    return "\b\nKeys of the YAML file (any other is refused):\n" + "\n".join(
        f"  {key:{width}s}  {text}" for key, text in keys.items()
    )
