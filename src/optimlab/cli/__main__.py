"""`python -m optimlab.cli ...` is the `optimlab` command."""

from optimlab.cli import main

raise SystemExit(main())
