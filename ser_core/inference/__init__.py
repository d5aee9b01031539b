"""Audio in, emotion probabilities out: everything the app and the command-line tools need to classify speech."""
