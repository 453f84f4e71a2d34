"""``python -m bnbook.bench NAME [options]`` with NAME in batchnorm, lenet, all."""
import importlib
import sys

from . import BENCHMARKS


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(f"usage: python -m bnbook.bench {{{'|'.join(BENCHMARKS + ('all',))}}} "
              f"[options]\n(options: python -m bnbook.bench NAME --help)")
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in BENCHMARKS + ("all",):
        print(f"unknown benchmark {name!r}: expected one of {BENCHMARKS + ('all',)}",
              file=sys.stderr)
        return 2
    status = 0
    for bench in (BENCHMARKS if name == "all" else (name,)):
        try:
            module = importlib.import_module(f"{__package__}.{bench}")
        except ModuleNotFoundError as err:
            if err.name != f"{__package__}.{bench}":
                raise
            print(f"benchmark {bench!r} is not available (no module bnbook.bench.{bench})",
                  file=sys.stderr)
            status = 2
            continue
        status = module.main(rest) or status
    return status


if __name__ == "__main__":
    sys.exit(main())
