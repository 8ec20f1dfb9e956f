"""pycrl: deepfake detection with Compact Reconstruction Learning.

Importing pycrl stays light: the compiled extension (pycrl._C), torch and the
inference backends are imported only by the modules that need them.
"""

__version__ = "0.1.0"
