"""``stylize live``: the pipeline (capture -> stylize threads), the main-thread app (outputs, keys,
overlay), and the key table that maps keys to controller actions."""
