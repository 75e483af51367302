"""vidiff: video diffusion models you can read, change and trust.

One small core (schedules, samplers, guidance, a space-time U-Net, a trainer) that the systems
of VDM, Make-A-Video, LVDM, LaMD and Tora are configurations of. Layout everywhere:
videos ``(B, C, F, H, W)`` in ``[-1, 1]``; ``uint8 (F, H, W, 3)`` at the file boundary.
"""

from .version import __version__  # noqa: E402
from .config import ExperimentConfig, load_config  # noqa: E402
from .data.video_io import export_to_gif, export_to_video, read_video, write_video  # noqa: E402
from .models import UNet3D, UNet3DConfig, load_model  # noqa: E402
from .pipelines import VideoDiffusionPipeline  # noqa: E402
from .training import Trainer  # noqa: E402

__all__ = ["ExperimentConfig", "load_config", "export_to_gif", "export_to_video", "read_video",
           "write_video", "UNet3D", "UNet3DConfig", "load_model", "VideoDiffusionPipeline",
           "Trainer", "__version__"]
