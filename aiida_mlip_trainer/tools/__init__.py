"""Scripts that calculations run on the computer where the job runs (console-script entry points of this package).

No AiiDA here: these modules run on a remote machine or under Slurm with only the plugin's Python dependencies
(numpy, ASE, python-ace). They read the files their calculation wrote into the job's folder (JSON, pacemaker YAML,
the active set) and write JSON: no pickle is read or written, no path outside the working directory is opened, and
every ASE calculator is chosen by name from an entry-point group, never by an import path.
"""

__all__ = ("calculators", "explore", "properties")
