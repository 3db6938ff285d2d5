from scratchdet.cli import app

app(prog_name="scratchdet")
