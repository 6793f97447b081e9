"""Chalice Blueprints, one per resource."""
