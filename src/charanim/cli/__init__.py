"""The ``charanim`` command line: one file per sub-command, built on Typer and rich."""
