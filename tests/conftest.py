"""Shared by every test directory: pytest puts this directory on sys.path, so the test data
modules beside this file (``minimal_engine``) import by name from any test."""
