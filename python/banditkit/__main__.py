"""`python -m banditkit ...`: the `banditkit` command, for environments without its script."""

from banditkit.cli import main

raise SystemExit(main())
