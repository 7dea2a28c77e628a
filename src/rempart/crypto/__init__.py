"""Key providers, envelope encryption of personal fields, blind indexes."""
