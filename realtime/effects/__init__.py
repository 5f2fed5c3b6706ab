"""Effects on the stream of style codes and pictures: crossfades between styles, temporal filtering."""
