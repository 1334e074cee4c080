"""One module per ``dreamtext`` subcommand; see :mod:`dreamtext.cli`."""
