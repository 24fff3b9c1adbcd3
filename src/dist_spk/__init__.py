"""dist_spk: distributed hyper-parameter search for speaker-diarization models.

Importing the package is cheap: it imports neither Ray nor pyannote. Heavy modules are imported by
the functions that need them.
"""

__version__ = "0.1.0"
