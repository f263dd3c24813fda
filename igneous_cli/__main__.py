"""``python -m igneous_cli`` runs the ``igneous`` command."""

from igneous_cli.cli import main

if __name__ == "__main__":
    main(prog_name="igneous")
