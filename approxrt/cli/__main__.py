"""`python -m approxrt.cli`: the same as the `approxrt` command."""

from approxrt.cli import main

main()
