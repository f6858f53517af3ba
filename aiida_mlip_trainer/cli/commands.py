"""`aiida-mlip-trainer`: import data, launch and watch a training, export a potential, without writing Python.

Every command has ``--help``; errors are one line on stderr and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import functools
import os
import pathlib
import sys

import click

from ..names import printable
from .yaml_keys import LEARNING_KEYS, TRAINING_KEYS, keys_help

CONTEXT = {"help_option_names": ["-h", "--help"]}
# Job-script text (prepend_text, ...) is not a key: it is set in Python on the builder.
TRAIN_LAUNCH_HELP = (
    "Launch a TrainingWorkChain from a YAML file of inputs (through get_builder_from_protocol).\n\n"
    + keys_help(TRAINING_KEYS)
)
LEARN_LAUNCH_HELP = (
    "Launch an ActiveLearningWorkChain from a YAML file of inputs (through get_builder_from_protocol).\n\n"
    + keys_help(LEARNING_KEYS)
)


def _fail(message: str) -> None:
    click.echo(f"Error: {message}", err=True)
    sys.exit(1)


def one_line(error: BaseException) -> str:
    """An exception as one line a user can act on: its message, with the exception's name when the message alone
    would be a bare word (``KeyError: 'Xx'``, ``UnknownFileTypeError: txt``), line breaks and escapes shown escaped."""
    message = str(error)
    if isinstance(error, KeyError) or len(message.split()) < 2:
        message = f"{error.__class__.__name__}: {message}" if message else error.__class__.__name__
    return printable(" ".join(message.split()) if "\n" in message else message)


def clean_errors(function):
    """Turn any exception of a command into one line on stderr and exit status 1; a reader that stops reading
    (``| head -3``) ends the command quietly."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except (click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except BrokenPipeError:
            # What is still buffered for stdout goes nowhere: Python would otherwise complain again at exit.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(0)
        except Exception as error:  # noqa: BLE001 - the point: no traceback for the user
            _fail(one_line(error))

    return wrapper


def read_structures(path: pathlib.Path, read, what: str = "", *, format_option: bool = True, unlabelled: str):
    """``read()`` (which reads the structure file at ``path``), with what went wrong said in one line that names
    the file (after ``what``): an unknown format, an unknown chemical symbol, refused data or the reader's error.
    ``unlabelled`` is what to do about a structure without energy or forces, in this command's words."""
    from ase.io.formats import UnknownFileTypeError

    from ..data import TrainingSetError
    from ..physics.training_arrays import MissingLabelsError

    name = f"{what} {path}" if what else str(path)
    try:
        return read()
    except UnknownFileTypeError as error:
        hint = "give a known suffix (.extxyz, .xyz, .db, ...)" + (" or --format" if format_option else "")
        raise ValueError(f"{name}: ASE cannot tell its format ({error}): {hint}") from None
    except KeyError as error:
        raise ValueError(f"{name}: {error} is not a chemical symbol ASE knows") from None
    except MissingLabelsError as error:
        raise ValueError(f"{name}: {error.detail}; {unlabelled}") from None
    except TrainingSetError as error:
        raise ValueError(f"{name}: {error}") from None
    except (OSError, ValueError, IndexError, AssertionError, StopIteration) as error:
        raise ValueError(f"{name} cannot be read: {one_line(error)}") from None


@click.group(context_settings=CONTEXT)
@click.option("-p", "--profile", default=None, help="AiiDA profile (default: the default profile).")
def cli(profile):
    """Train ACE potentials with pacemaker through AiiDA."""
    from aiida import load_profile

    try:
        load_profile(profile, allow_switch=True)
    except Exception as error:  # noqa: BLE001
        _fail(f"cannot load the AiiDA profile {profile or '(default)'}: {error}")


def yaml_problem(error) -> str:
    """A YAML parser error as ``line L, column C: problem``, without the parser's dump of the text."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    context = getattr(error, "context", None)
    return f"{where}{problem}" + (f" ({context})" if context else "")


def _load(identifier: str, expected: type | tuple[type, ...]):
    from aiida import orm

    node = orm.load_node(identifier)
    if not isinstance(node, expected):
        names = expected.__name__ if isinstance(expected, type) else " or ".join(t.__name__ for t in expected)
        raise ValueError(f"node {identifier} is a {node.__class__.__name__}, not a {names}")
    return node


# ------------------------------------------------------------------------------------------------------------ data
@cli.group(context_settings=CONTEXT)
def data():
    """Training sets."""


@data.command("import", context_settings=CONTEXT)
@click.argument("path", required=False, type=click.Path(exists=True, dir_okay=False, path_type=pathlib.Path))
@click.option(
    "--group",
    "group_label",
    default=None,
    help="Instead of PATH: the finished calculations of this AiiDA group (PwCalculation, PwBaseWorkChain, "
    "Cp2kCalculation, ...), each structure linked to its calculation.",
)
@click.option(
    "--split-by-settings", is_flag=True, help="With --group: one training set per DFT setting instead of a refusal."
)
@click.option("--format", "file_format", default=None, help="ASE format name (default: from the file name).")
@click.option("--unlabelled", is_flag=True, help="A pool of candidates without energies and forces.")
@click.option("--energy-key", default="energy", show_default=True, help="info key of the energy when no calculator.")
@click.option("--forces-key", default="forces", show_default=True, help="arrays key of the forces.")
@click.option("--stress-key", default="stress", show_default=True, help="info key of the stress.")
@click.option("--label", default=None, help="Label of the new node.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@clean_errors
def data_import(
    path, group_label, split_by_settings, file_format, unlabelled, energy_key, forces_key, stress_key, label, quiet
):
    """Import PATH (extxyz, ASE database, or anything ASE reads), or with --group the finished DFT calculations of
    an AiiDA group, as a TrainingSetData node."""
    if (path is None) == (group_label is None):
        raise click.UsageError("give either PATH or --group NAME")
    if group_label is not None:
        _import_group(group_label, split_by_settings, label)
        return
    if split_by_settings:
        raise click.UsageError("--split-by-settings goes with --group")
    from ase.io import iread
    from tqdm import tqdm

    from ..data import TrainingSetData

    def read():
        frames = iread(str(path), index=":", format=file_format)
        structures = tqdm(frames, desc=f"reading {path.name}", unit=" structures", disable=quiet, file=sys.stderr)
        return TrainingSetData(
            list(structures),
            labelled=not unlabelled,
            energy_key=energy_key,
            forces_key=forces_key,
            stress_key=stress_key,
        )

    node = read_structures(path, read, unlabelled="import it with --unlabelled for an unlabelled pool")
    if label:
        node.label = label
    node.store()
    _echo_training_set(node)


def _echo_training_set(node) -> None:
    attributes = node.base.attributes.all
    click.echo(
        f"TrainingSetData<{node.pk}> {node.uuid}: {node.num_structures} structures, {node.num_atoms} atoms, "
        f"elements {node.elements}, {'labelled' if node.labelled else 'unlabelled'}"
        + (", with stress" if attributes.get("has_stress") else "")
    )


def _import_group(group_label: str, split_by_settings: bool, label: str | None) -> None:
    """`data import --group`: one line per training set made, then one per skipped process."""
    from aiida import orm

    from ..workflows.database_import import import_processes

    group = orm.load_group(label=group_label)
    results = import_processes(group, split_by_settings=split_by_settings)
    for result in results:
        node = result["training_set"]
        if label:
            node.label = label
        _echo_training_set(node)
    for skipped in results[0]["report"]["skipped"]:
        click.echo(f"skipped {printable(skipped['label'])} {skipped['uuid']}: {printable(skipped['reason'])}")


@data.command("show", context_settings=CONTEXT)
@click.argument("identifier")
@clean_errors
def data_show(identifier):
    """Summary of a TrainingSetData (pk, UUID or label)."""
    from ..data import TrainingSetData

    node = _load(identifier, TrainingSetData)
    for key, value in sorted(node.base.attributes.all.items()):
        click.echo(f"{printable(key):24s} {printable(value)}")  # attributes of an imported node may hold escapes


# ----------------------------------------------------------------------------------------------------------- train
@cli.group(context_settings=CONTEXT)
def train():
    """Launch and watch trainings."""


@train.command("launch", context_settings=CONTEXT, help=TRAIN_LAUNCH_HELP)
@click.argument("inputs_file", type=click.Path(exists=True, dir_okay=False, path_type=pathlib.Path))
@click.option("--daemon/--run", default=True, show_default=True, help="Submit to the daemon, or run here and wait.")
@clean_errors
def train_launch(inputs_file, daemon):
    import yaml

    from .training_yaml import training_builder_from_yaml

    try:
        builder = training_builder_from_yaml(inputs_file)
    except yaml.YAMLError as error:
        raise ValueError(f"{inputs_file} is not valid YAML: {yaml_problem(error)}") from None
    if "structures_file" in builder:
        # Read it here, as the work chain's import will: bad data is refused in one line before anything starts.
        from ..workflows.functions.training_set import training_set_from_file

        file_node = builder.structures_file
        read_structures(
            pathlib.Path(file_node.filename),
            lambda: training_set_from_file(file_node),
            f"{inputs_file}: structures_file",
            format_option=False,
            unlabelled="a training needs energies and forces for every structure",
        )
    node = _launch(builder, daemon, "train")
    if node is None:
        return
    results = node.outputs
    click.echo(
        f"TrainingWorkChain<{node.pk}> {node.process_state.value} [{node.exit_status}] {node.exit_message or ''}"
    )
    if node.is_finished_ok:
        metrics = results["metrics"].get_dict()
        click.echo(f"potential: {results['potential'].uuid}")
        click.echo(f"learned: {validation_lines(metrics)[1]}")
        click.echo(
            f"test force RMSE: {metrics['force_rmse']:.2f} meV/Å "
            f"(reference force RMS: {metrics['reference']['force_component_rms']:.2f} meV/Å)"
        )
    else:
        sys.exit(1)


@train.command("status", context_settings=CONTEXT)
@click.argument("identifier")
@click.option(
    "--every",
    default=10,
    show_default=True,
    type=click.IntRange(min=1),
    help="Show every n-th iteration of the learning curve (1: all).",
)
@clean_errors
def train_status(identifier, every):
    """State and learning curve of a training (TrainingWorkChain, PaceTrainBaseWorkChain or PaceTrainCalculation),
    also while it runs."""
    from aiida import orm

    from ..monitoring import calculation_versions, fit_progress, fit_words, learning_curve, training_calculations

    node = _load(identifier, orm.ProcessNode)
    state = node.process_state.value if node.process_state else "unknown"
    click.echo(f"{node.process_label}<{node.pk}>: {state}" + (f" [{node.exit_status}]" if node.is_finished else ""))
    if node.process_label == "TrainingWorkChain" and "metrics" in node.outputs:
        errors, learned = validation_lines(node.outputs.metrics.get_dict())
        click.echo(f"held-out test: {errors}")
        click.echo(f"learned: {learned}")
    calculations = training_calculations(node)
    if not calculations:
        click.echo("no training calculation yet")
        return
    for calc in calculations:
        state = calc.process_state.value if calc.process_state else "created"
        click.echo(
            f"\n{calc.process_label}<{calc.pk}> ({state}"
            + (f", exit {calc.exit_status}" if calc.is_finished else "")
            + ")"
        )
        versions = calculation_versions(calc)
        if versions:
            click.echo(f"  fitted with {format_versions(versions)}")
        progress = fit_progress(calc)  # from pacemaker's log: also between two rows of the curve
        if progress is not None:
            click.echo(f"  {'now at' if not calc.is_terminated else 'ended at'} {fit_words(progress)}")
        curve = learning_curve(calc)
        if not curve["train"]:
            click.echo("  no metrics yet")
            continue
        test = {point["iteration"]: point for point in curve["test"]}
        click.echo(f"  {'iteration':>9s} {'loss':>11s} {'train E':>9s} {'train F':>9s} {'test E':>9s} {'test F':>9s}")
        click.echo(f"  {'':>9s} {'':>11s} {'meV/atom':>9s} {'meV/Å':>9s} {'meV/atom':>9s} {'meV/Å':>9s}")
        points = curve["train"]
        shown = points[::every] + ([points[-1]] if (len(points) - 1) % every else [])
        for point in shown:
            other = test.get(point["iteration"])
            test_columns = (
                f"{other['energy_rmse']:9.3f} {other['force_rmse']:9.2f}" if other else f"{'-':>9s} {'-':>9s}"
            )
            click.echo(
                f"  {point['iteration']:9d} {point['loss']:11.4e} {point['energy_rmse']:9.3f} "
                f"{point['force_rmse']:9.2f} {test_columns}"
            )


@cli.group(context_settings=CONTEXT)
def learn():
    """Launch and watch active-learning loops (train, explore, select, label, retrain)."""


@learn.command("launch", context_settings=CONTEXT, help=LEARN_LAUNCH_HELP)
@click.argument("inputs_file", type=click.Path(exists=True, dir_okay=False, path_type=pathlib.Path))
@click.option("--daemon/--run", default=True, show_default=True, help="Submit to the daemon, or run here and wait.")
@clean_errors
def learn_launch(inputs_file, daemon):
    import yaml

    from .learning_yaml import learning_builder_from_yaml

    try:
        builder = learning_builder_from_yaml(inputs_file)
    except yaml.YAMLError as error:
        raise ValueError(f"{inputs_file} is not valid YAML: {yaml_problem(error)}") from None
    node = _launch(builder, daemon, "learn")
    if node is None:
        return
    click.echo(
        f"ActiveLearningWorkChain<{node.pk}> {node.process_state.value} [{node.exit_status}] {node.exit_message or ''}"
    )
    _print_loop(node)
    if not node.is_finished_ok:
        sys.exit(1)


@learn.command("status", context_settings=CONTEXT)
@click.argument("identifier")
@clean_errors
def learn_status(identifier):
    """State and learning curve of an ActiveLearningWorkChain, also while it runs: per round the oracle calls made
    before its fit, the training structures, the held-out errors, the largest γ and the share of halted
    trajectories of its exploration."""
    from aiida import orm

    node = _load(identifier, orm.WorkflowNode)
    if node.process_label != "ActiveLearningWorkChain":
        raise ValueError(f"node {identifier} is a {node.process_label}, not an ActiveLearningWorkChain")
    state = node.process_state.value if node.process_state else "unknown"
    click.echo(f"{node.process_label}<{node.pk}>: {state}" + (f" [{node.exit_status}]" if node.is_finished else ""))
    _print_loop(node)


def _print_loop(node) -> None:
    """The learning curve of a loop so far, what runs now, and why it stopped."""
    from ..monitoring import loop_progress, progress_line

    progress = loop_progress(node)
    rows = progress["rounds"]
    if not rows:
        click.echo("no round finished its fit yet")
    else:
        reference = progress["reference"]
        if reference["force_component_rms"] is not None:
            click.echo(
                f"held-out set: force RMS {reference['force_component_rms']:.1f} meV/Å, energy spread "
                f"{reference['energy_per_atom_std']:.2f} meV/atom"
            )
        header = ("round", "oracle", "training", "test E", "test F", "max", "halted")
        click.echo("{:>5s} {:>7s} {:>9s} {:>9s} {:>8s} {:>8s} {:>7s}".format(*header))
        click.echo(f"{'':>5s} {'calls':>7s} {'structs':>9s} {'meV/atom':>9s} {'meV/Å':>8s} {'γ':>8s} {'':>7s}")
        for row in rows:
            gamma = f"{row['max_gamma']:8.2f}" if row["max_gamma"] is not None else f"{'-':>8s}"
            halted = f"{row['fraction_halted']:7.0%}" if row["fraction_halted"] is not None else f"{'-':>7s}"
            click.echo(
                f"{row['round']:5d} {row['oracle_calls']:7d} {row['training_structures']:9d} "
                f"{row['energy_rmse']:9.3f} {row['force_rmse']:8.2f} {gamma} {halted}"
                + ("  not learned" if row.get("learned") is False else "")
            )
        for k, reason in progress["rises"].items():
            click.echo(f"round {k}: {reason}")
    for label, child in progress["running"]:
        click.echo(f"running: {label}: {child.process_label}<{child.pk}>")
    if progress["running"]:
        click.echo(f"now: {progress_line(node)}")
    if progress["stop_reason"] is not None:
        click.echo(f"stopped: {progress['stop_reason']}")


def _launch(builder, daemon: bool, group: str):
    """Submit ``builder`` to the daemon (returns None after saying how to watch it) or run it here (returns the
    finished node)."""
    from aiida.engine import submit

    if not daemon:
        return _run_here(builder)
    from aiida.engine.daemon.client import get_daemon_client
    from aiida.manage import get_manager

    profile = get_manager().get_profile()
    if profile.process_control_backend is None:
        raise ValueError(
            f"the profile {profile.name!r} has no broker, so nothing can be submitted to a daemon: run it here with "
            "--run (or give the profile a broker, e.g. verdi presto --use-zeromq)"
        )
    node = submit(builder)
    click.echo(f"submitted {node.process_label}<{node.pk}> {node.uuid}")
    if not get_daemon_client(profile.name).is_daemon_running:
        click.echo("the daemon is not running: start it with `verdi daemon start`, or nothing will happen")
    click.echo(f"watch it: aiida-mlip-trainer {group} status {node.pk}")
    return None


class _ProgressDisplay:
    """While a process runs here: the work chains' reports as short plain lines (``TrainingWorkChain: ...``, not
    aiida's logger lines with date, pid and logger name) and a progress line (:func:`progress_line`), refreshed in
    place on a terminal, printed when it changes otherwise."""

    def __init__(self):
        import logging
        import re

        self.prefix = re.compile(r"^\[\d+\|(?P<label>[^|\]]+)\|[^\]]*\]: ")
        self.tty = sys.stdout.isatty()
        self.line = ""
        display = self

        class Handler(logging.Handler):
            def emit(self, record):
                display.say(record)

        self.handler = Handler(level=logging.INFO)

    def say(self, record) -> None:
        import logging

        message = self.prefix.sub(lambda m: f"{m['label']}: ", record.getMessage())
        if record.levelno >= logging.WARNING:
            message = f"{record.levelname.lower()}: {message}"
        self._clear()
        click.echo(message)
        self._show()

    def _clear(self) -> None:
        if self.tty and self.line:
            click.echo("\r\033[K", nl=False)

    def _show(self) -> None:
        if self.tty and self.line:
            click.echo(self.line[: click.get_terminal_size()[0] - 1], nl=False)

    def update(self, line: str) -> None:
        if line == self.line:
            return
        self._clear()
        self.line = line
        if self.tty:
            self._show()
        else:
            click.echo(line)

    def close(self) -> None:
        if self.tty and self.line:
            click.echo("")


def _run_here(builder, interval: float = 2.0):
    """Run ``builder`` in this interpreter and return its node, with :class:`_ProgressDisplay` showing where it is
    every ``interval`` seconds."""
    import logging

    from aiida.engine.utils import instantiate_process
    from aiida.manage import get_manager

    from ..monitoring import progress_line

    runner = get_manager().get_runner()
    process = instantiate_process(runner, builder)
    display = _ProgressDisplay()
    aiida_logger = logging.getLogger("aiida")
    handlers = aiida_logger.handlers[:]
    for handler in handlers:  # aiida's console handler: its lines carry date, pid and logger name
        aiida_logger.removeHandler(handler)
    aiida_logger.addHandler(display.handler)
    timer = None

    def tick():
        nonlocal timer
        try:
            display.update(progress_line(process.node))
        except Exception as error:  # noqa: BLE001 - a display problem must not stop the run
            display.update(f"(progress unknown: {one_line(error)})")
        timer = runner.loop.call_later(interval, tick)

    timer = runner.loop.call_soon(tick)
    try:
        runner.run(process)
    finally:
        timer.cancel()
        display.close()
        aiida_logger.removeHandler(display.handler)
        for handler in handlers:
            aiida_logger.addHandler(handler)
    return process.node


# ------------------------------------------------------------------------------------------------------- potential
@cli.group(context_settings=CONTEXT)
def potential():
    """Potentials."""


@potential.command("show", context_settings=CONTEXT)
@click.argument("identifier")
@clean_errors
def potential_show(identifier):
    """A potential (pk, UUID or label; or a training, for its potential): its attributes, files, baseline, the
    versions of the software that fitted it, and the fit that made it."""
    import json

    from aiida import orm

    from ..data import PacePotentialData

    node = _potential_of(_load(identifier, (PacePotentialData, orm.ProcessNode)))
    attributes = node.base.attributes.all
    click.echo(f"PacePotentialData<{node.pk}> {node.uuid}" + (f" {printable(node.label)!r}" if node.label else ""))
    click.echo(f"{'elements':24s} {' '.join(node.elements)}")  # checked to be chemical symbols
    for key in ("cutoff", "num_functions", "has_yace", "has_active_set", "content_hash"):
        click.echo(f"{key:24s} {printable(attributes.get(key))}")
    baseline = node.baseline  # checked to be a valid baseline
    click.echo(f"{'baseline':24s} {json.dumps(baseline) if baseline else 'none'}")
    names = node.base.repository.list_object_names()
    sizes = ", ".join(
        f"{printable(name)} ({len(node.base.repository.get_object_content(name, mode='rb'))} bytes)" for name in names
    )
    click.echo(f"{'files':24s} {sizes}")
    versions = node.fitted_with
    click.echo(f"{'fitted with':24s} {format_versions(versions) if versions else 'unknown'}")
    fit = _fit_of(node)
    made_by = f"{fit.process_label}<{fit.pk}>" if fit is not None else "no fit in this profile"
    click.echo(f"{'made by':24s} {made_by}")
    for validation in _validations_of(node):
        errors, learned = validation_lines(validation.get_dict())
        click.echo(f"{'held-out test':24s} {errors} (validate_potential<{validation.creator.pk}>)")
        click.echo(f"{'learned':24s} {learned}")


def validation_lines(metrics: dict) -> tuple[str, str]:
    """The held-out errors of a validation next to the spread of the data, and whether the fit has learned, judged
    again from the numbers (the metrics may come from an archive, or from before the flag existed)."""
    from ..workflows.functions.potential import judge_learning

    reference = metrics.get("reference") if isinstance(metrics.get("reference"), dict) else {}

    def number(value, digits: str) -> str:
        return format(value, digits) if isinstance(value, int | float) and not isinstance(value, bool) else "?"

    errors = (
        f"E {number(metrics.get('energy_rmse'), '.4g')} meV/atom (spread "
        f"{number(reference.get('energy_per_atom_std'), '.4g')}), F {number(metrics.get('force_rmse'), '.4g')} meV/Å "
        f"(RMS {number(reference.get('force_component_rms'), '.4g')}) on {number(metrics.get('num_structures'), 'g')} "
        "structures"
    )
    judgement = judge_learning(metrics)
    if judgement["learned"] is False:
        learned = f"NO, NOT LEARNED: {printable('; '.join(judgement['not_learned_reasons']))}"
    elif judgement["learned"] is None:
        learned = f"cannot be judged: {printable('; '.join(judgement['not_judged']))}"
    else:
        learned = "yes (errors below half the spread of the data)" + (
            f"; not judged: {printable('; '.join(judgement['not_judged']))}" if judgement["not_judged"] else ""
        )
    return errors, learned


def _validations_of(potential) -> list:
    """The ``metrics`` of every ``validate_potential`` of ``potential`` in this profile, oldest first."""
    from aiida import orm

    query = orm.QueryBuilder()
    query.append(orm.Data, filters={"id": potential.pk}, tag="potential")
    query.append(
        orm.CalcFunctionNode,
        with_incoming="potential",
        filters={"attributes.process_label": "validate_potential"},
        tag="validation",
        project="ctime",
    )
    query.append(orm.Dict, with_incoming="validation", edge_filters={"label": "metrics"}, project="*")
    return [metrics for _, metrics in sorted(query.all(), key=lambda row: row[0])]


def format_versions(versions: dict) -> str:
    """``python-ace 0.4.0rc1, tensorpotential 0.6.2.1, tensorflow 2.20.0, ...`` (unknown ones as ``?``)."""
    from ..calculations.versions import PACKAGES

    order = [*PACKAGES, "python"]
    names = sorted(versions, key=lambda name: order.index(name) if name in order else len(order))
    return ", ".join(f"{printable(name)} {printable(versions[name]) if versions[name] else '?'}" for name in names)


def _potential_of(node):
    """The potential itself, or the `potential` output of a training."""
    from aiida import orm

    if isinstance(node, orm.ProcessNode):  # a training: its potential
        if "potential" not in node.outputs:
            raise ValueError(f"{node.process_label}<{node.pk}> has no `potential` output (yet)")
        return node.outputs.potential
    return node


def _fit_of(potential):
    """The PaceTrainCalculation that fitted ``potential``, following the steps that copy a potential (assembling,
    attaching an active set) back to it; None when there is none in this profile."""
    from ..data import PacePotentialData

    node = potential
    for _ in range(10):
        creator = node.creator
        if creator is None:
            return None
        if creator.process_type == "aiida.calculations:mlip_trainer.pace_train":
            return creator
        parents = [n for n in creator.base.links.get_incoming().all_nodes() if isinstance(n, PacePotentialData)]
        if not parents:
            return None
        node = parents[0]
    return None


@potential.command("export", context_settings=CONTEXT)
@click.argument("identifier")
@click.option("--format", "target", type=click.Choice(["lammps", "ase"]), default="lammps", show_default=True)
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False, path_type=pathlib.Path),
    default=pathlib.Path("."),
    show_default=True,
    help="Directory to write into.",
)
@click.option("--name", default="potential", show_default=True, help="Stem of the written files.")
@clean_errors
def potential_export(identifier, target, output, name):
    """Write a potential for LAMMPS (.yace, .asi, and the exact pair_style/pair_coeff lines, baseline included)
    or for ASE (.yaml, .asi, and a Python snippet that builds the calculator, baseline included)."""
    from aiida import orm

    from ..data import PacePotentialData
    from ..export import export_potential

    node = _potential_of(_load(identifier, (PacePotentialData, orm.ProcessNode)))
    for path in export_potential(node, output, target=target, name=name):
        click.echo(f"wrote {path}")


if __name__ == "__main__":  # pragma: no cover
    cli()
