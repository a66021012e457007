"""`python -m ouroboros.operator` runs the operator (see `main`)."""

import sys

from ouroboros.operator.main import main

sys.exit(main())
