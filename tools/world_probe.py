"""What the probes over the world's test pairs share: their command line and their cases."""

from __future__ import annotations

import argparse
from pathlib import Path

from charanim.bench.cases import BenchCase, world_suite


def world_probe_parser(description: str) -> argparse.ArgumentParser:
    """A probe's parser with the world's options: --data, --cases, --report, --threads, --json."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data", type=Path, help="a world manifest (its test split); default: the bench's world"
    )
    parser.add_argument("--cases", type=int, default=48)
    parser.add_argument(
        "--report", type=Path, default=Path("runs/bench-probe"), help="where the bench's world is cached"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    return parser


def world_cases(args: argparse.Namespace) -> list[BenchCase]:
    """The test cases the parsed options name, those that loaded."""
    return [c for c in world_suite(args.report, args.cases, args.data) if not c.error]
