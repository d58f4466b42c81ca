"""``python3 -m integrations.ssh`` (or the zipapp): the ``pushgate-ssh`` command."""

import sys

from .cli import main

sys.exit(main())
