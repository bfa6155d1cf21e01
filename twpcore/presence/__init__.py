"""TWP presence: users' states and messages, and what colleagues see of them (issue 18)."""
