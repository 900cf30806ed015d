"""Bokeh figure builders shared by notebooks, widgets and the dashboard."""

from .quant import CalibrationFigure, GridFigure, LayerErrorFigure
from .roofline import RooflineFigure, ceilings_html, roofline_figure

__all__ = ["CalibrationFigure", "GridFigure", "LayerErrorFigure", "RooflineFigure", "ceilings_html",
           "roofline_figure"]
