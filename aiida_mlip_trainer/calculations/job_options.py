"""One rule for the ``metadata.options`` of a job: text that ends up in the job script is taken only from Python.

aiida-core writes several options into the job script as they are: ``prepend_text``, ``append_text`` and
``custom_scheduler_commands`` are lines of shell, ``mpirun_extra_params`` words of the command line, the keys of
``environment_variables`` follow ``export`` unescaped (``{"A=1; touch x; B": "v"}`` becomes
``export A=1; touch x; B='v'``), ``queue_name``, ``account``, ``qos`` and ``priority`` follow ``#SBATCH`` on a line of
their own, and the file names (``submit_script_filename``, ``scheduler_stdout``, ...) and retrieve lists are paths.

A user who types these into Python on a builder (``builder.training.pace.metadata.options.prepend_text = ...``)
means them. Options read from anywhere else (a YAML file, a stored oracle description, any node of the database)
are data: only the scheduler requests of :data:`DATA_OPTIONS` are taken from them, each with a plain value, and the
only environment variables are the thread counts of :data:`THREAD_VARIABLES`, set to a positive integer.
Environment variable names must be identifiers wherever they come from, Python included.
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Mapping
from typing import Any

__all__ = (
    "DATA_OPTIONS",
    "THREAD_VARIABLES",
    "check_data_options",
    "check_environment_variable_names",
    "check_options_in",
    "guard_environment_variables",
    "validate_environment_variables",
)

# Scheduler requests that a YAML file or a stored description may set: none of them can carry shell or a path.
DATA_OPTIONS = (
    "resources",
    "max_wallclock_seconds",
    "max_memory_kb",
    "queue_name",
    "account",
    "qos",
    "priority",
    "withmpi",
    "rerunnable",
    "environment_variables",
)
# The environment variables data may set: how many threads the numerical libraries start. Any other variable can
# run code (LD_PRELOAD, BASH_ENV, PATH, PYTHONSTARTUP, ...).
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
)
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# A queue, account, QOS or priority as the schedulers name them: one word, no whitespace, no shell characters.
_TOKEN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:+@%=,-]{0,127}$")
_WORD_OPTIONS = ("queue_name", "account", "qos", "priority")
_INTEGER_OPTIONS = ("max_wallclock_seconds", "max_memory_kb")
_BOOLEAN_OPTIONS = ("withmpi", "rerunnable")


def check_environment_variable_names(variables: Any) -> str | None:
    """None when ``variables`` maps names that are shell identifiers (``[A-Za-z_][A-Za-z0-9_]*``) to values, else a
    one-line message. aiida-core writes ``export <name>=<quoted value>`` without escaping the name."""
    if not isinstance(variables, Mapping):
        return f"environment_variables must be a mapping of names to values, got {type(variables).__name__}"
    for name in variables:
        if not isinstance(name, str) or not _IDENTIFIER.match(name):
            return (
                f"environment variable name {name!r} is not an identifier (letters, digits and _, not starting with "
                "a digit): aiida-core writes it into the job script unescaped"
            )
    return None


def validate_environment_variables(value: Any, _port: Any = None) -> str | None:
    """Port validator of ``metadata.options.environment_variables`` (see :func:`guard_environment_variables`)."""
    return check_environment_variable_names(value)


def guard_environment_variables(namespace: Any) -> None:
    """Put :func:`validate_environment_variables` on every ``metadata.options.environment_variables`` port found in
    the port namespace ``namespace`` (a process spec's ``inputs``, exposed namespaces included), so that a name that
    is not an identifier is refused before any job, whoever set it."""
    ports = [namespace]
    while ports:
        current = ports.pop()
        for name, port in current.items():
            if name == "environment_variables" and getattr(current, "name", None) == "options":
                port.validator = validate_environment_variables
            elif hasattr(port, "items"):
                ports.append(port)


def _is_positive_integer(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value > 0


def _check_value(key: str, value: Any) -> str | None:
    """None when ``value`` is a plain value of the data option ``key``, else what is wrong."""
    if key == "resources":
        if not isinstance(value, Mapping):
            return "resources must be a mapping such as {num_machines: 1, num_mpiprocs_per_machine: 4}"
        for name, item in value.items():
            if not isinstance(name, str) or not _IDENTIFIER.match(name):
                return f"resources key {name!r} is not a name"
            plain = isinstance(item, str) and _TOKEN.match(item)
            if not (plain or isinstance(item, bool) or _is_positive_integer(item) or item == 0):
                return f"resources.{name} must be a number or one word, got {item!r}"
        return None
    if key in _INTEGER_OPTIONS:
        return None if _is_positive_integer(value) else f"{key} must be a positive integer, got {value!r}"
    if key in _BOOLEAN_OPTIONS:
        return None if isinstance(value, bool) else f"{key} must be true or false, got {value!r}"
    if key in _WORD_OPTIONS:
        if isinstance(value, str) and _TOKEN.match(value):
            return None
        return f"{key} must be one word (letters, digits, . _ - : + @ % = ,), got {value!r}"
    if key == "environment_variables":
        if not isinstance(value, Mapping):
            return "environment_variables must be a mapping of names to values"
        for name, item in value.items():
            if name not in THREAD_VARIABLES:
                return (
                    f"environment variable {name!r} is job-script text (only the thread counts "
                    f"{', '.join(THREAD_VARIABLES)} are taken from data)"
                )
            if not (_is_positive_integer(item) or (isinstance(item, str) and item.isdigit() and int(item) > 0)):
                return f"environment variable {name} must be a positive integer, got {item!r}"
        return None
    return None


def check_data_options(options: Any, where: str, instead: str) -> str | None:
    """None when ``options`` (read from ``where``: a YAML file, a stored oracle description) hold only the scheduler
    requests of :data:`DATA_OPTIONS` with plain values; else a one-line message that names the key and says where to
    set it instead (``instead``: e.g. ``"on the builder in Python: builder.training.pace.metadata.options"``)."""
    if options is None:
        return None
    if not isinstance(options, Mapping):
        return f"{where}: options must be a mapping of scheduler options, got {type(options).__name__}"
    for key, value in options.items():
        if key not in DATA_OPTIONS:
            return (
                f"{where}: option {key!r} is not read from a file or a stored node (it is job-script text, a path "
                f"or unknown; allowed there: {', '.join(DATA_OPTIONS)}); set it {instead}"
            )
        problem = _check_value(key, value)
        if problem is not None:
            extra = f"; set it {instead}" if key == "environment_variables" else ""
            return f"{where}: {problem}{extra}"
    return None


def check_options_in(tree: Any, where: str, instead: str) -> str | None:
    """:func:`check_data_options` on every ``metadata.options`` mapping nested anywhere in ``tree`` (e.g. a YAML
    file's protocol ``overrides``: ``{training: {pace: {metadata: {options: ...}}}}``). None or the first message."""
    stack: list[tuple[Any, str]] = [(tree, where)]
    while stack:
        node, at = stack.pop()
        if not isinstance(node, Mapping):
            continue
        for key, value in node.items():
            here = f"{at}.{key}"
            if key == "metadata" and isinstance(value, Mapping) and "options" in value:
                message = check_data_options(value["options"], f"{here}.options", instead)
                if message is not None:
                    return message
            if isinstance(value, Mapping):
                stack.append((value, here))
    return None
