"""Rights checks (IDB) and engagements; prior agreements (PEC)."""
