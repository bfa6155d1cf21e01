"""``python -m twp_csta.sim``: run the PBX simulator standalone (``--help`` for its options)."""

from twp_csta.sim.switch import main

main()
