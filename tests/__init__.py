"""Tests of Gnomon, mirroring its packages."""
