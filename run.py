#!/usr/bin/env python3
"""Start the redemption API sandbox, or run its tools: `python run.py --help`, `python run.py contract --help`."""
import sys

from sandbox.cli import main

if __name__ == "__main__":
    sys.exit(main())
