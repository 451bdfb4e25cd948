"""``python -m edgedetect`` runs the ``edgedetect`` command."""

import sys

from edgedetect.cli import main

sys.exit(main())
