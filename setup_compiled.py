"""The compiled build of the hot core modules (mypyc): `make compiled` runs
`python setup_compiled.py build_ext --inplace --force` (forced: an extension it finds up to date in
build/ would not be copied back after `make pure`), which writes a `.so` next to each module below.

Python imports an extension module before the `.py` of the same name, so with the `.so` present
the compiled code runs; without it (no C compiler, `make pure`) the plain-Python modules run,
and they are the reference: the same source, type-checked by `mypy --strict`, the same outputs
byte for byte (the golden and replay-equality tests run on both, .ci/run).

Only modules that define no pydantic model and no subclass of a C type (mypyc cannot compile
those classes): `policies/digests.py` (an `array` subclass), `catalog.py`, `contracts.py` and
`events/models.py` stay plain Python.
"""
from setuptools import setup

from mypyc.build import mypycify

COMPILED_MODULES = [
    "events/ids.py",
    "policies/attainment.py",
    "policies/calendar.py",
    "policies/downtime.py",
    "policies/outputs.py",
    "policies/parking.py",
    "policies/processor.py",
    "policies/tickets.py",
    "policies/uptime.py",
]

# One group: the modules call each other natively. Its shared library is
# `policies/_compiled__mypyc.*.so`, inside the package (not at the top of the repository).
setup(name="slaproc-compiled", ext_modules=mypycify(COMPILED_MODULES, opt_level="2", group_name="policies._compiled"))
