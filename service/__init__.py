"""alertfeat: low-latency light-curve features and cross-matches for the Rubin alert stream."""

__version__ = "0.1.0"
