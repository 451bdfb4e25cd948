"""Host-side tools (datasets, evaluation, training): may use TensorFlow; never imported by ``edgedetect``."""
