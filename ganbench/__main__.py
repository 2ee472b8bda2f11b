"""Allow ``python -m ganbench`` (and ``torchrun -m ganbench``)."""

from ganbench.cli import main

raise SystemExit(main())
