import sys

from optbook.grade.cli import main

sys.exit(main())
