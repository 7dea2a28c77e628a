"""The rights registry: plans, members and their rights, as the AMCs load them."""
