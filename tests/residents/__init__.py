"""Tests of the residents service."""
