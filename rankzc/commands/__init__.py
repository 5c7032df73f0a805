"""Click commands of the ``rankzc`` CLI, one module per topic.

Every module here that defines ``COMMANDS`` (a list of click commands or groups)
is registered by :mod:`rankzc.cli`.
"""
