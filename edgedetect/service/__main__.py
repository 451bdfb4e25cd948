"""`python -m edgedetect.service run --config FILE` (same as `edgedetect run`)."""

import sys

from edgedetect.service.cli import main

sys.exit(main())
