"""Shared by every test directory: pytest puts this directory on sys.path, so the test data
and fixture modules beside this file (``minimal_engine``, ``sim_fixtures``, ``gw_engine``, ...)
import by name from any test."""
