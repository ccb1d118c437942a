"""``python -m optbook.training``: the training pipeline's command line (:mod:`optbook.training.cli`)."""

import sys

from optbook.training.cli import main

sys.exit(main())
