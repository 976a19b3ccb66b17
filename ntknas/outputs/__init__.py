"""A study shown or handed on: tables, plots, the dashboard, exported picks."""
