"""The agent's web pages under `/ui/`: server-rendered (Jinja2), no JavaScript, reading the
store through the rollups and indexed queries so that a page stays fast at thousands of
checks. `routes` wires them; one module per page's data."""
