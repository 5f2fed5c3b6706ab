"""realtime: live neural style transfer with any painting as the style.

Magenta's arbitrary-image-stylization network (Ghiasi et al. 2017) with precomputed style codes:
each style image becomes a 100-number code once, so each frame pays only for the transfer network.
"""

import os

__version__ = "0.1.0"

# OpenCV's own cap on the pixels of an image it decodes, read once when cv2 loads (so set here, before
# any module imports it): a second guard behind the header check every reader makes first
# (realtime.io.images.MAX_PIXELS, the same number; a test keeps them equal).  OpenCV's default is
# 2^30 pixels, 3 GB decoded.  A value the user exported is kept.
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", "50000000")
