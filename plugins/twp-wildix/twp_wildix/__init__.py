"""TWP plugin for the Wildix PBX: pop-up URL events (see ``twp_wildix.plugin``)."""
