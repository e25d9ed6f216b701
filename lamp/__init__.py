"""lamp: language-reward-modulated pretraining of robot-manipulation agents (LAMP, arXiv 2308.12270)."""

__version__ = "0.1.0"
