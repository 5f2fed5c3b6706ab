"""realtime: live neural style transfer with any painting as the style.

Magenta's arbitrary-image-stylization network (Ghiasi et al. 2017) with precomputed style codes:
each style image becomes a 100-number code once, so each frame pays only for the transfer network.
"""

__version__ = "0.1.0"
