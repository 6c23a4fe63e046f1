"""Code run in a fresh interpreter, to see what it imports."""
from __future__ import annotations

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def imports_sqlalchemy(code: str) -> bool:
    """Whether running ``code`` (statements) imports SQLAlchemy."""
    script = code + "\nimport sys\nprint('sqlalchemy' in sys.modules)\n"
    out = subprocess.run([sys.executable, "-c", script], check=True,
                         capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=ROOT)).stdout
    return {"True": True, "False": False}[out.strip()]
