import sys

from otterscope.cli.main import main

sys.exit(main())
