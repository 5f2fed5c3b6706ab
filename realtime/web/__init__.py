"""The control page, JSON API and preview stream: a control surface and an output for the live show."""
