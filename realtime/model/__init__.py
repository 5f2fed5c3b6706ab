"""The network side: backends (one interface, several engines), model files and downloads, styles
and their cached codes, and the engine a command starts with."""
