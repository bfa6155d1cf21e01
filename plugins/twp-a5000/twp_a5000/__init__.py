"""TWP plugin for the Aastra / Mitel A5000 (MiVoice 5000, NeXspan): VTI-XML and CSTA links, PBX directory."""
