"""Evaluation: the analytic Moving Shapes detector and metrics, PSNR and SSIM."""

from .detector import Detection, detect_frame, detect_video
from .metrics import (ShapeMetrics, caption_adherence, evaluate_videos, motion_smoothness, psnr,
                      ssim, trajectory_error)

__all__ = ["Detection", "detect_frame", "detect_video", "ShapeMetrics", "caption_adherence",
           "evaluate_videos", "motion_smoothness", "psnr", "ssim", "trajectory_error"]
