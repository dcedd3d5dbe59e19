import sys

if __name__ == "__main__":
    try:
        from pgtorchrl.cli import main

        code = main()
    except KeyboardInterrupt:  # Ctrl-C before the command could open anything (imports, validation)
        print("pgtorchrl: error: interrupted before any run was opened", file=sys.stderr)
        code = 130
    from pgtorchrl.record.fast_exit import leave

    leave(code)  # the MLflow writer has ended and every file is closed (see fast_exit for why)
