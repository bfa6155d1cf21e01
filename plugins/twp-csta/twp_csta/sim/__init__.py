"""The PBX simulator: a switch speaking CSTA XML over TCP, the peer of CSTA drivers in tests and demos.

``PbxSimulator`` (in ``switch``) listens like a switch's CSTA XML interface, written with
the toolkit's own framing and codec; ``SimConfig`` sets it up, ``DemoTraffic`` plays calls
between simulated people.  Standalone: ``python -m twp_csta.sim --port 8882 --devices 201-210``.
"""

from twp_csta.sim.switch import DemoTraffic, PbxSimulator, Scenarios, SimCall, SimConfig, SimDevice, SimFault, expand_devices

__all__ = ["DemoTraffic", "PbxSimulator", "Scenarios", "SimCall", "SimConfig", "SimDevice", "SimFault", "expand_devices"]
