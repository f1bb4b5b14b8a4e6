import sys

from roomler.cli import main

sys.exit(main())
