"""Condition encoders: turn what a user or a batch gives (class labels, fps, prompts, a first frame's content, trajectories) into the
keyword conditioning a model declares it accepts (``model.accepted_conditions``).

Each encoder is an :data:`~vidiff.registry.ENCODERS` entry named after the keyword it feeds;
pipelines and the diffusion task loop over the registry, so a new condition is a new entry,
never a new branch in shared code.
"""

from .base import (ConditionEncoder, condition_encoders, encoder_arguments, encoder_value,
                   model_conditions)
from .content import ContentEncoder
from .labels import ClassLabelEncoder, FpsEncoder
from .motion import MotionEncoder, TrajectoryConfig
from .text import TextConditionEncoder

__all__ = ["ConditionEncoder", "model_conditions", "condition_encoders", "encoder_arguments", "encoder_value",
           "ClassLabelEncoder", "FpsEncoder", "TextConditionEncoder", "ContentEncoder", "MotionEncoder",
           "TrajectoryConfig"]
