"""``stylize video --cluster``: whole files and keyframe segments of long files as work units for
Ray actors that each hold a loaded engine; resumable through a manifest per input; segments joined
by stream copy with the source's sound.  Ray is imported only when ``--cluster`` is given."""
