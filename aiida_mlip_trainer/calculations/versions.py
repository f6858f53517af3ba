"""The versions of the fitting software, read on the machine where a pacemaker tool runs.

Every pacemaker-tool job script first asks the Python interpreter of the code's executable (the one named in its
``#!`` line, as pip writes it for ``pacemaker``, ``pace_select`` and ``pace_activeset``) for the installed
versions of python-ace, tensorpotential, TensorFlow, tf-keras and numpy, without importing them (a second or less),
and writes them to ``versions.json``. The parsers record them on the calculation (``versions`` output) and on the
potentials a fit produces (``fitted_with`` attribute), so that two potentials fitted with different versions can be
told apart by a query. An executable that is not a Python script (a wrapper) gives no ``versions.json``; pacemaker's
own log still names python-ace and tensorpotential.
"""

from __future__ import annotations

import json
import shlex

from aiida import orm

__all__ = ("VERSIONS_FILENAME", "read_versions", "version_probe")

VERSIONS_FILENAME = "versions.json"
PACKAGES = {
    "python-ace": ("python-ace",),
    "tensorpotential": ("tensorpotential",),
    "tensorflow": ("tensorflow", "tensorflow-cpu"),
    "tf-keras": ("tf-keras",),
    "numpy": ("numpy",),
}
# Python run by the job script: no single quote in it (it goes inside '...'), standard library only.
_PROBE = (
    "import json, platform\n"
    "from importlib import metadata\n"
    "def version(names):\n"
    "    for name in names:\n"
    "        try:\n"
    "            return metadata.version(name)\n"
    "        except Exception:\n"
    "            pass\n"
    f"packages = {json.dumps(PACKAGES)}\n"
    "found = {key: version(names) for key, names in packages.items()}\n"
    'found["python"] = platform.python_version()\n'
    "print(json.dumps(found))\n"
)


def version_probe(code: orm.AbstractCode) -> str | None:
    """The job-script lines that write ``versions.json`` with the interpreter of ``code``'s executable, or None for
    a code whose executable is not a file on the machine (then only pacemaker's log tells the versions)."""
    if not isinstance(code, orm.InstalledCode):
        return None
    executable = shlex.quote(str(code.get_executable()))
    return "\n".join(
        [
            "# Versions of python-ace, tensorpotential and TensorFlow, read by the Python that runs the tool",
            f"MLIP_TRAINER_PYTHON=$(sed -n '1s/^#![[:space:]]*//p' {executable} 2>/dev/null)",
            'case "$MLIP_TRAINER_PYTHON" in',
            f"  *python*) ( set -f; $MLIP_TRAINER_PYTHON -c '{_PROBE}' > {VERSIONS_FILENAME} 2>/dev/null ) ;;",
            "esac",
        ]
    )


def read_versions(text: str | None) -> dict[str, str | None] | None:
    """The versions of a ``versions.json`` written by :func:`version_probe`: known keys only, short strings or None;
    None when there is no such file or it is not what the probe writes (the file comes from the remote machine)."""
    if not text:
        return None
    try:
        found = json.loads(text)
    except ValueError:
        return None
    if not isinstance(found, dict):
        return None
    keys = (*PACKAGES, "python")
    return {key: (str(found[key])[:64] if found.get(key) is not None else None) for key in keys if key in found}
