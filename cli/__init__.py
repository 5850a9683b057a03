"""The `motcua` console script (cli/main.py): a shell over engine/, like api/ is over HTTP."""
