"""Evaluation: the analytic Moving Shapes detector and metrics, PSNR and SSIM, and the Moving
Shapes evaluation of sampled clips against reference clips."""

from .detector import Detection, detect_frame, detect_video
from .metrics import (ShapeMetrics, caption_adherence, evaluate_videos, motion_smoothness, psnr,
                      ssim, trajectory_error)
from .moving_shapes_eval import (REFERENCE_SEED, MovingShapesEvalError,
                                 evaluate_against_reference, expected_counts,
                                 moving_shapes_config, reference_clips)

__all__ = ["Detection", "detect_frame", "detect_video", "ShapeMetrics", "caption_adherence",
           "evaluate_videos", "motion_smoothness", "psnr", "ssim", "trajectory_error",
           "REFERENCE_SEED", "MovingShapesEvalError", "evaluate_against_reference",
           "expected_counts", "moving_shapes_config", "reference_clips"]
