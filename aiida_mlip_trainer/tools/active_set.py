"""The active set (``.asi``) of an ACE potential, read and checked before pyace uses it for the extrapolation grade.

pacemaker's ``pace_activeset`` writes the ``.asi`` with ``np.savez``: one square matrix per element, the inverse of
the element's active set (its MaxVol-selected B-projections), of the size of the element's number of basis
functions. The extrapolation grade of an atom is ``γ = max |B · A⁻¹|``, so a matrix of zeros gives γ = 0 for every
structure (exploration then reads "converged"), and a NaN gives NaN grades. Both the job script
(``mlip-trainer-explore``) and :meth:`PacePotentialData.verify` read the file here first. No AiiDA, no pickle.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Mapping

import numpy as np

__all__ = ("ActiveSetError", "active_set_sizes", "check_active_set")


# The .npy header readers by format version (np.savez writes 1.0 for plain float arrays).
_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


class ActiveSetError(ValueError):
    """An ``.asi`` that is not one finite, non-singular square matrix per element of the potential's basis."""


def active_set_sizes(basis) -> dict[str, int]:
    """Per element of a pyace ``ACEBBasisSet``: its number of basis functions, the side of its ``.asi`` matrix."""
    from pyace.activelearning import compute_number_of_functions

    counts = compute_number_of_functions(basis)
    return {name: int(count) for name, count in zip(basis.elements_name, counts, strict=True)}


def check_active_set(content: bytes, sizes: Mapping[str, int]) -> dict[str, np.ndarray]:
    """The matrices of the ``.asi`` ``content`` by element, checked against ``sizes`` (element -> number of basis
    functions, :func:`active_set_sizes`); :class:`ActiveSetError` naming the element otherwise.

    Checked: an ``.npz`` of plain arrays (never unpickled), exactly the potential's elements, each a real
    ``(n, n)`` matrix with ``n`` its number of functions (read from the array header before any data is read),
    finite, and not singular: its smallest singular value must exceed ``σ_max · n · ε`` (ε the float64 machine
    epsilon), numpy's and LAPACK's criterion for a matrix of full rank in floating point (``numpy.linalg.matrix_rank``).
    A real active set is far from it (the argon one of the tests has a condition number of about 10⁷, the limit is
    about 10¹⁴ for 36 functions)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
        members = archive.namelist()
    except (zipfile.BadZipFile, ValueError, OSError) as error:
        raise ActiveSetError(f"not an .npz archive of matrices ({error})") from None
    names = {member.removesuffix(".npy") for member in members}
    if len(names) != len(members) or not all(member.endswith(".npy") for member in members):
        raise ActiveSetError(f"not an .npz archive of matrices only: it holds {sorted(members)[:8]}")
    if names != set(sizes):
        raise ActiveSetError(f"it holds matrices for {sorted(names)[:8]}, the potential's elements are {sorted(sizes)}")
    matrices = {}
    for element in sorted(sizes):
        where = f"element {element!r}"
        size = int(sizes[element])
        try:
            with archive.open(f"{element}.npy") as handle:
                reader = _HEADER_READERS.get(np.lib.format.read_magic(handle))
                if reader is None:
                    raise ActiveSetError(f"{where}: not a .npy array of a known format version")
                shape, _, dtype = reader(handle)
            if shape != (size, size) or dtype.kind != "f":
                raise ActiveSetError(
                    f"{where}: a {dtype} array of shape {shape}, expected float ({size}, {size}) "
                    "(one row and column per basis function of the element)"
                )
            with archive.open(f"{element}.npy") as handle:  # the size is known to be right: now read the data
                matrix = np.lib.format.read_array(handle, allow_pickle=False)
        except ActiveSetError:
            raise
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
            raise ActiveSetError(f"{where}: the matrix cannot be read safely ({error})") from None
        matrix = np.asarray(matrix, dtype=np.float64)
        if not np.isfinite(matrix).all():
            raise ActiveSetError(f"{where}: the matrix contains NaN or infinite values")
        singular = np.linalg.svd(matrix, compute_uv=False)
        if singular[0] == 0.0 or singular[-1] <= singular[0] * size * np.finfo(np.float64).eps:
            raise ActiveSetError(
                f"{where}: the matrix is singular (smallest singular value {singular[-1]:.3g}, largest "
                f"{singular[0]:.3g}): it gives no extrapolation grade"
            )
        matrices[element] = matrix
    return matrices
