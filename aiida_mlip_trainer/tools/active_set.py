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

__all__ = ("ActiveSetError", "basis_layout", "check_active_set")


# The .npy header readers by format version (np.savez writes 1.0 for plain float arrays).
_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


class ActiveSetError(ValueError):
    """An ``.asi`` that is not one finite, non-singular square matrix per element of the potential's basis."""


def basis_layout(basis) -> dict[str, dict[str, int]]:
    """Per element of a pyace ``ACEBBasisSet`` (or GRACE-FS ``GRACEFSBasisSet``, ndensity 1): ``num_functions``
    (the side of its linear ``.asi`` matrix, one MaxVol row per function) and ``ndensity`` (the non-linear ``.asi``
    of ``pace_activeset -f`` has side ``num_functions * ndensity``)."""
    from pyace.activelearning import compute_number_of_functions
    from pyace.grace_fs import GRACEFSBasisSet

    counts = compute_number_of_functions(basis)
    if isinstance(basis, GRACEFSBasisSet):  # GRACE-FS: the linear active set only
        names = basis.elements_name
        return {name: {"num_functions": int(counts[index]), "ndensity": 1} for index, name in enumerate(names)}
    return {
        name: {"num_functions": int(counts[index]), "ndensity": int(basis.map_embedding_specifications[index].ndensity)}
        for index, name in enumerate(basis.elements_name)
    }


def check_active_set(content: bytes, layout: Mapping[str, Mapping[str, int]]) -> dict[str, np.ndarray]:
    """The matrices of the ``.asi`` ``content`` by element, checked against the potential's basis ``layout``
    (:func:`basis_layout`); :class:`ActiveSetError` naming the element otherwise.

    Checked: an ``.npz`` of plain arrays (never unpickled), exactly the potential's elements, each a real
    ``(n, n)`` matrix (the header is read before any data) with ``n`` its number of functions (linear active set)
    or that times its ``ndensity`` (non-linear, ``pace_activeset -f``), the same kind for every element as pyace
    requires; finite, and not singular: its smallest singular value must exceed ``σ_max · n · ε`` (ε the float64
    machine epsilon), numpy's and LAPACK's criterion for a matrix of full rank in floating point
    (``numpy.linalg.matrix_rank``). A real active set is far from it (the argon one of the tests has a condition
    number of about 10⁷, the limit is about 10¹⁴ for 36 functions)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
        members = archive.namelist()
    except (zipfile.BadZipFile, ValueError, OSError) as error:
        raise ActiveSetError(f"not an .npz archive of matrices ({error})") from None
    names = {member.removesuffix(".npy") for member in members}
    if len(names) != len(members) or not all(member.endswith(".npy") for member in members):
        raise ActiveSetError(f"not an .npz archive of matrices only: it holds {sorted(members)[:8]}")
    if names != set(layout):
        expected = sorted(layout)
        raise ActiveSetError(f"it holds matrices for {sorted(names)[:8]}, the potential's elements are {expected}")
    matrices, kinds = {}, set()
    for element in sorted(layout):
        where = f"element {element!r}"
        linear = int(layout[element]["num_functions"])
        sizes = {linear: "linear", linear * int(layout[element]["ndensity"]): "non-linear"}
        try:
            with archive.open(f"{element}.npy") as handle:
                reader = _HEADER_READERS.get(np.lib.format.read_magic(handle))
                if reader is None:
                    raise ActiveSetError(f"{where}: not a .npy array of a known format version")
                shape, _, dtype = reader(handle)
            size = shape[0] if len(shape) == 2 and shape[0] == shape[1] else None
            if size not in sizes or dtype.kind != "f":
                expected = " or ".join(f"({n}, {n})" for n in sorted(sizes))
                raise ActiveSetError(
                    f"{where}: a {dtype} array of shape {shape}, expected float {expected} (one row and column per "
                    "basis function of the element, times its ndensity for a non-linear active set)"
                )
            kinds.add(sizes[size])
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
    if len(kinds) > 1:
        raise ActiveSetError("it mixes linear and non-linear matrices: pyace needs the same kind for every element")
    return matrices
