"""Fixtures of the scheduler tests."""

from tests.executor.conftest import busybox_image

__all__ = ["busybox_image"]
