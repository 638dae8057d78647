"""``python -m keras_lookahead [compare] [options]`` and the ``lookahead-keras`` command.

Commands:
    compare   bare optimizers against Lookahead on a real data set (the default;
              ``lookahead-keras compare --help``)
    sensitivity
              the inner optimizer's learning rate, bare against Lookahead, on MNIST-1D's
              CNN by default (``lookahead-keras sensitivity --help``)
"""
import sys

COMMANDS = ("compare", "sensitivity")


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] in (["-h"], ["--help"]):
        print(__doc__.strip())
        return 0
    if argv and not argv[0].startswith("-") and argv[0] not in COMMANDS:
        commands = ", ".join(COMMANDS)
        print(f"lookahead-keras: unknown command {argv[0]!r}; commands: {commands}",
              file=sys.stderr)
        return 2
    if argv[:1] == ["sensitivity"]:
        from keras_lookahead import sensitivity
        sensitivity.main(argv[1:])
        return 0
    if argv[:1] == ["compare"]:
        argv = argv[1:]
    from keras_lookahead import compare
    compare.main(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
