"""`biotune report STUDY`: tables, plots, significance and recommendations from a study's results store,
as a self-contained HTML page (no CDN: plots are inline SVG) and a Markdown summary."""
