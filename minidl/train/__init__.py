"""Training and evaluating the sentiment models: ``fit``, ``evaluate``, checkpoints."""
from .checkpoint import load_classifier
from .config import TrainConfig
from .trainer import Callback, Result, TrainingDiverged, evaluate, fit

__all__ = ["Callback", "Result", "TrainConfig", "TrainingDiverged", "evaluate", "fit", "load_classifier"]
