"""Operator tools for a running SESami (local stack or AWS)."""
