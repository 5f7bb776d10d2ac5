"""Running the CLI in-process from tests, as a user would from a shell."""

from benchbench.cli import main


def invoke(args, capsys):
    """(exit code, stdout, stderr) of ``benchbench ARGS``."""
    try:
        main(args)
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err
