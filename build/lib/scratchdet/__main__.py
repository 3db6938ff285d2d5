from scratchdet.cli import app

if __name__ == "__main__":  # not when a worker process (spawn) imports this module
    app(prog_name="scratchdet")
