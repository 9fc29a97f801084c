"""Figures and pages built from the scores and theory tables.

Every figure is a :class:`matplotlib.figure.Figure` created without pyplot, so
building one never touches global plotting state and works headless.
"""

from miragelab.report.theory_figure import plot_theory, write_theory_outputs

__all__ = ["plot_theory", "write_theory_outputs"]
