"""Bokeh figure builders shared by notebooks, widgets and the dashboard."""

from .roofline import RooflineFigure, ceilings_html, roofline_figure

__all__ = ["RooflineFigure", "ceilings_html", "roofline_figure"]
