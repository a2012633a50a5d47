import sys

from pyrunc.codepack import install

install()  # pyrunc's modules from the code pack, where it is fresh (as the launcher does)

from pyrunc.cli import main  # noqa: E402

sys.exit(main())
