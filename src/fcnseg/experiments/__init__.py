"""Experiments that reproduce the paper's findings with fcnseg's public API.

* :mod:`.demo` — ``fcnseg demo``: the shipped classifier fine-tuned as FCN-32s → 16s → 8s in five CPU minutes;
* :mod:`.miniature` — ``fcnseg experiment miniature``: Table 2 in miniature (fixed budget, or at convergence);
* :mod:`.paper` — ``fcnseg experiment paper``: the rest of the paper's findings, each verdict computed.

Nothing is imported here (the command line lists the scales and parts without torch); import the submodules.
"""
