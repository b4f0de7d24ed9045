"""`python -m tests.integration.versioned_worker`: the real worker with the catalog directory
named by the test (`SLAPROC_TEST_CATALOG_DIR`) instead of the packaged one, as a deployment that
ships a catalog with another published version would run. Used by test_catalog_versions_restart."""
from __future__ import annotations

import argparse
import functools
import os
import sys

from policies import catalog as catalog_module
from streams.worker import add_worker_flags, run_worker

catalog_module.default_catalog = functools.lru_cache(maxsize=1)(
    lambda: catalog_module.load_catalog(os.environ["SLAPROC_TEST_CATALOG_DIR"]))

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="versioned worker")
    add_worker_flags(parser)
    sys.exit(run_worker(parser.parse_args()))
