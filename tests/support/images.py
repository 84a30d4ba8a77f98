"""The busybox test image every real-engine test runs, built by tests/images/build_busybox.sh."""

from __future__ import annotations

import subprocess
from pathlib import Path

TEST_IMAGE = "gnomon-test/busybox"
TEST_TAG = "latest"
BUILD_SCRIPT = Path(__file__).parents[1] / "images" / "build_busybox.sh"


def build_test_image() -> str | None:
    """Build the image unless present; None when it is there, else why the build failed."""
    result = subprocess.run(
        [str(BUILD_SCRIPT)], capture_output=True, text=True, timeout=600, check=False
    )
    return None if result.returncode == 0 else result.stderr
