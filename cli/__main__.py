"""`python -m cli …` is `motcua …` (used by `motcua serve` to start the worker beside the server)."""

from .main import main

main()
