from pgtorchrl.cli import main

raise SystemExit(main())
