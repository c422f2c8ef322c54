"""Command cores that are more than a call (DESIGN.md §1): each takes plain arguments and a
store, returns data, and never prints or exits; compiler/cli.py renders and exits."""
