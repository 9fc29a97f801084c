"""Genuine transitions: abrupt changes that survive a continuous metric.

* :mod:`~miragelab.transitions.detect` -- changepoint test for any curve ``y(x)``
  (scale or training step), calibrated by a wild bootstrap, with its
  false-positive rate and power on simulated curves;
* :mod:`~miragelab.transitions.induction` -- a tiny transformer trained on
  repeated random tokens, whose induction heads form abruptly (torch);
* :mod:`~miragelab.transitions.apply` -- the detector over scores tables and
  the induction run. :mod:`miragelab.verdict` runs the same detector where a
  harsh metric jumps.

Every function returns data; the figures and output folders are written by
:mod:`miragelab.report.transitions_figures`, the commands live in
:mod:`miragelab.cli.transitions` (``mirage transitions``).

torch is imported only by :mod:`~miragelab.transitions.induction`.
"""

from miragelab.transitions.detect import Transition, detect_transition, genuine_transition

__all__ = ["Transition", "detect_transition", "genuine_transition"]
