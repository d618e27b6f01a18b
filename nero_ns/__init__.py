"""nerfstudio entry points of nero-ns: the nero-shape and nero-material methods and the nero-data dataparser."""

from nero_ns.console import quiet_third_party_warnings

quiet_third_party_warnings()
