"""The only strings read from a node or given by a user that may reach a file another program reads.

A node imported from an AiiDA archive can carry any attribute and any repository file. Wherever such a string ends up
in a LAMMPS input line, pacemaker's ``input.yaml``, a job script, a file name or a Python snippet, it passes one of
these checks first: element symbols must be chemical symbols exactly, file stems plain names, suffixes plain
suffixes, and structure names one printable line. No AiiDA import here: plain strings in, plain strings out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ase.data import chemical_symbols

__all__ = (
    "ELEMENTS",
    "UnsafeNameError",
    "check_element_symbols",
    "check_file_stem",
    "control_characters",
    "plain_suffix",
    "printable",
)

# The chemical symbols H to Og, the one element table of the package; chemical_symbols[0] is ASE's dummy "X", not an
# element.
ELEMENTS = frozenset(chemical_symbols[1:])
# A file stem we write: letters, digits, '_', '-', '.', not starting with '.' or '-' (no hidden files, no options).
_STEM = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")
# A suffix ASE recognises formats by: '.extxyz', '.xyz', '.db', '.traj', '.cif', '.json', ... and '.gz' after one.
_SUFFIX = re.compile(r"(\.[A-Za-z0-9_-]{1,16}){1,2}")
_COMPRESSION = ("gz", "bz2", "xz")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


class UnsafeNameError(ValueError):
    """A string that would reach a file another program reads is not what it must be."""


def check_element_symbols(symbols: Iterable, where: str) -> list[str]:
    """``symbols`` as a list of ``str`` when each is a chemical element symbol exactly (``"Cu"``, not ``" Cu"``,
    not ``"Cu\\nshell ..."``); else :class:`UnsafeNameError` with a one-line message that starts with ``where``."""
    if isinstance(symbols, str | bytes) or not isinstance(symbols, Iterable):
        raise UnsafeNameError(f"{where}: expected a list of chemical element symbols, got {symbols!r}")
    checked = []
    for symbol in symbols:
        if not isinstance(symbol, str) or symbol not in ELEMENTS:
            raise UnsafeNameError(f"{where}: {symbol!r} is not a chemical element symbol")
        checked.append(symbol)
    return checked


def check_file_stem(stem: str, where: str = "file name") -> str:
    """``stem`` when it is a plain file name without directory or suffix magic (letters, digits, ``_``, ``-``,
    ``.``; not starting with ``.`` or ``-``; no ``..``); else :class:`UnsafeNameError` saying what is accepted."""
    if not isinstance(stem, str) or not _STEM.fullmatch(stem) or ".." in stem:
        raise UnsafeNameError(
            f"{where} {stem!r} is not a plain file stem: use letters, digits, '_', '-' and '.' only (no directory, "
            "no spaces or quotes, not starting with '.' or '-'); the directory is given separately"
        )
    return stem


def plain_suffix(filename: str) -> str:
    """The suffix of ``filename`` (``".extxyz"``, ``".xyz.gz"``) when it is a plain one, else ``""``: a stored file
    name is never used as a path, only its suffix, so that ASE can still tell the format from it."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1] if isinstance(filename, str) else ""
    if not name or name.startswith("."):
        return ""
    parts = name.split(".")[1:]
    # ASE reads through a compression suffix to the format's own: keep both then ('.xyz.gz'), else the last one.
    keep = parts[-2:] if len(parts) > 1 and parts[-1].lower() in _COMPRESSION else parts[-1:]
    suffix = "".join(f".{part}" for part in keep)
    return suffix if suffix and _SUFFIX.fullmatch(suffix) else ""


def control_characters(text: str) -> bool:
    """Whether ``text`` holds a line break or another control character (which breaks line-based formats)."""
    return bool(_CONTROL.search(text))


def printable(value) -> str:
    """``value`` for a terminal: strings with control characters (line breaks, escape sequences) shown escaped."""
    text = str(value)
    return repr(text)[1:-1] if control_characters(text) else text
