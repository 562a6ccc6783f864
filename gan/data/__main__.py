"""``python -m gan.data PATH``: see :mod:`gan.data.cli`."""
import sys

from gan.data.cli import main

sys.exit(main())
