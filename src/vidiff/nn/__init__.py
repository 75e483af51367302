"""Neural-network building blocks shared by every vidiff model."""

from .attention import Attention, RelativePositionBias, SpatialAttention, TemporalAttention
from .blocks import Downsample, ResBlock, Upsample
from .embeddings import ScalarEmbedding, sinusoidal_embedding
from .norms import AdaGroupNorm, group_norm
from .temporal_conv import TemporalConv

__all__ = ["Attention", "RelativePositionBias", "SpatialAttention", "TemporalAttention",
           "Downsample", "ResBlock", "Upsample", "ScalarEmbedding", "sinusoidal_embedding",
           "AdaGroupNorm", "group_norm", "TemporalConv"]
