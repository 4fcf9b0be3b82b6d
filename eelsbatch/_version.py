"""The installed version of eelsbatch (recorded in every store it writes)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("eelsbatch")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"
