"""Media files through PyAV, written once for every mode: the decoder (:mod:`.decode`: rotation,
stream time, seeking), the sound's routes (:mod:`.audio`) and the H.264 writer (:mod:`.h264`)."""
