"""Claims: the adjudication engine, calculations (CLC), invoices (DRE) and accumulators."""
