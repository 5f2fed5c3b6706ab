"""``python -m realtime`` is the same as the ``stylize`` command."""

from .cli import entry

raise SystemExit(entry())
