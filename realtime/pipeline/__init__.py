"""The path of a frame, for every mode: the stylize stage (preprocess, infer, postprocess), the
per-stream state it carries between frames, and the video file pipeline's threads."""
