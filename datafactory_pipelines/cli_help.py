"""How every `datafactory` command presents itself in `--help`."""

from __future__ import annotations

import argparse
from typing import Any


def add_command(sub: argparse._SubParsersAction, name: str, summary: str, **kwargs: Any) -> argparse.ArgumentParser:
    """A command whose own `--help` opens with the summary the command list shows (argparse shows nothing
    there unless told)."""
    kwargs.setdefault("description", summary)
    return sub.add_parser(name, help=summary, **kwargs)
