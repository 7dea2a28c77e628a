"""Rempart: a tiers-payant operator built so that reading its members at scale is impossible."""

__version__ = "0.1.0"
