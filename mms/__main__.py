from mms.cli import main

raise SystemExit(main())
