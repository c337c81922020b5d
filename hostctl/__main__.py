"""`python -m hostctl`: the same as the `hostctl` command."""

from hostctl.cli.main import main

main()
