"""The operators' console: a web page on `datafactory serve` to find, read and clean leads (see docs/console.md)."""

from datafactory_pipelines.console.app import mount_console

__all__ = ["mount_console"]
