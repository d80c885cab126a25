"""One module per ``python -m bench`` subcommand: each defines ``add_arguments(parser)`` and
``main(args) -> int`` (the exit code), turns its flags into the library's inputs and calls it."""
