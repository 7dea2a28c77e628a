"""Quotas, anomaly detection and containment: stopping the abuse of real accounts."""
