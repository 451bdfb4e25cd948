"""Host-side tools (datasets, evaluation, training).

They may use TensorFlow; ``edgedetect`` never imports them.
"""
