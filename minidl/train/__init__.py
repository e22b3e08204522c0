"""Training and evaluating the models: the training core ``train``, ``fit`` (classification
from a config), ``evaluate``, checkpoints."""
from .checkpoint import load_classifier
from .config import TrainConfig
from .loop import Callback, Checkpoints, TrainingDiverged, train
from .trainer import Result, evaluate, fit

__all__ = ["Callback", "Checkpoints", "Result", "TrainConfig", "TrainingDiverged", "evaluate", "fit",
           "load_classifier", "train"]
