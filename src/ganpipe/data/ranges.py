"""The pixel value ranges a float image file can declare (see imagefiles.py), in a module of their own so that
the CLI lists them in its options without importing torch: `ganpipe --help` answers in a fraction of a second."""
RANGES = {"-1,1": (-1.0, 1.0), "0,1": (0.0, 1.0), "0,255": (0.0, 255.0)}
