"""The data of each dashboard page, shaped in plain Python: one module per page
(fleet overview, device, model, per-frame run, sweep, scenario), the tables several pages
share (tables.py) and the cells they are made of (cells.py). A page function reads the
store through edgebench.collector.aggregate and returns its template's name and context;
the markup is in ``templates/`` (templating.py renders it)."""
