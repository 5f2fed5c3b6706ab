"""Offline jobs: ``stylize video``, ``stylize image`` and ``stylize bench``, each from a validated
``Config`` plus a typed job spec (never an argparse namespace)."""
