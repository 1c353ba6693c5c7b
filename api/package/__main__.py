"""``python -m zeren``: the ``zeren`` command."""
import sys

from zeren.api.cli.main import main

sys.exit(main())
