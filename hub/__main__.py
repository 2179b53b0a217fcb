"""`python -m hub` is the `aktenhub` command."""

from hub.cli import main

main()
