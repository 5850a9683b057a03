"""motcua's domain and workflow core: procedures, dossiers, tasks, the calendar, deadlines, persistence.

Nothing in this package imports Flask; `api/` is a thin HTTP shell over the services here.
"""
