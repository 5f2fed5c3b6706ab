"""The engine's core, independent of any mode: frames, worker threads, the live controller, and
the one stylize stage every mode (live, video, image) runs its frames through."""
