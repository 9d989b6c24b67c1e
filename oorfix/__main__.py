from oorfix.cli import run

run()
