import logging
import os
import sys

if __name__ == "__main__":
    try:
        from pgtorchrl.cli import main

        code = main()
    except KeyboardInterrupt:  # Ctrl-C before the command could open anything (imports, validation)
        print("pgtorchrl: error: interrupted before any run was opened", file=sys.stderr)
        code = 130
    # Leave without the interpreter's teardown: unloading torch, tensordict and TorchRL takes
    # 0.6-0.8 s, and nothing is left to release (the MLflow writer has ended, files are closed).
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
