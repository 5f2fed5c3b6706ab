"""Control surfaces beside the web page that speak a protocol of their own (OSC): each one only
calls ``controller.do`` and listens to the controller's events."""
