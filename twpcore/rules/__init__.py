"""Forward rules: simple ones applied in the PBX, advanced ones evaluated by TWP on each incoming call (issue 18)."""
