"""vidiff: video diffusion models you can read, change and trust."""
__version__ = "0.1.0"
