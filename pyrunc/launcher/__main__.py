import sys

from pyrunc.launcher import main

sys.exit(main(sys.argv[1:]))
