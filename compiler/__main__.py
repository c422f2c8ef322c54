"""`python -m compiler` runs the dsc command line."""

from compiler.cli import main

main()
