"""`hacenter`: the command line for HA Center's REST API (standard library only).

It talks to the console through `/api/v1/` alone, so it installs without the console's
dependencies and works against any console a token reaches.
"""

__version__ = "0.1.0"
