import logging
import os
import sys

from pgtorchrl.cli import main

if __name__ == "__main__":
    code = main()
    # Leave without the interpreter's teardown: unloading torch, tensordict and TorchRL takes
    # 0.6-0.8 s, and nothing is left to release (the MLflow writer has ended, files are closed).
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
