"""A lab of throwaway Linux "servers" (network namespaces + sshd) for HA Center's tests.

See DESIGN.md section 4. ``python -m tests.lab up|down|status`` drives it from a shell.
"""

from ._util import LabError
from .core import DEFAULT_ROOT, Lab, LabHost
from .hostfs import USER_PASSWORDS
from .network import reachable

__all__ = ["DEFAULT_ROOT", "USER_PASSWORDS", "Lab", "LabError", "LabHost", "reachable"]
