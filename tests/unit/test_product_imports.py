"""The product (worker, gateway, replay, CLI) imports none of the dev tooling: the embedded
test broker, the test harness, the demo (issue 17, item 5)."""
from __future__ import annotations

import subprocess
import sys

PRODUCT = ("streams.app", "streams.worker", "streams.cli", "streams.replay", "streams.web",
           "streams.gateway.run", "streams.gateway.server")
DEV_TOOLING = ("streams.testing", "streams.demo")


def test_product_modules_do_not_import_the_dev_tooling():
    # A fresh interpreter: this test process has imported the tooling already.
    code = (f"import sys\nimport {', '.join(PRODUCT)}\n"
            f"print(','.join(m for m in {DEV_TOOLING!r} if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == ""
