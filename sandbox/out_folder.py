"""`--out DIR` of the commands that write files (`report`, `simulate`): checked before the work.

Making the folder is not enough: an existing folder may refuse new files (permissions, a read-only
or virtual file system), which was only found when the first file was written, as a traceback,
after the table was read or the day simulated. A file is created and removed there first.
"""

from __future__ import annotations

import tempfile
from pathlib import Path


def writable_folder(path: Path) -> str | None:
    """None when files can be written in `path` (made if missing), else why not, in a few words."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"cannot make that folder ({exc.strerror or exc})"
    try:
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        return f"cannot write in that folder ({exc.strerror or exc})"
    return None
