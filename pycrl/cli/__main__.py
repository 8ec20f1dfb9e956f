import sys

from pycrl.cli import main

sys.exit(main())
