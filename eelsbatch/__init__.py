"""eelsbatch: core-loss edge recognition in every pixel of EELS spectrum images."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("eelsbatch")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"
