try:
    from mms.cli import main
except KeyboardInterrupt:  # Ctrl-C before the command line is even read
    import sys

    print("mms: interrupted", file=sys.stderr)
    raise SystemExit(130) from None

raise SystemExit(main())
