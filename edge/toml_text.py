"""TOML text to a dict on every Python the appliance runs on: tomllib from 3.11, tomli on 3.10.

Python 3.10 matters on the production box: JetPack 6 (Ubuntu 22.04) ships it, and JetPack's
TensorRT bindings are built for that system Python, so the venv that sees them (`systemd/install.sh`,
`--system-site-packages`) runs 3.10. tomllib is tomli added to the standard library, with the same
`loads` and the same errors (ValueError subclasses). The appliance's code is otherwise 3.10-clean,
which `tests/test_python_versions.py` checks with vermin; the model factory needs 3.11 (edge.cli).
"""

from __future__ import annotations

import sys

if sys.version_info >= (3, 11):
    from tomllib import loads  # novermin: only on 3.11+
else:
    from tomli import loads

__all__ = ["loads"]  # the TOML document; ValueError (TOMLDecodeError) with line and column when not
