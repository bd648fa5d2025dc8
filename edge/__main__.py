"""Allow `python -m edge` as a synonym of the `binpick` command."""

from edge.cli import main

raise SystemExit(main())
