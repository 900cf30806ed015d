"""Bokeh figure builders shared by notebooks, widgets and the dashboard."""

from .quant import CalibrationFigure, GridFigure, LayerErrorFigure
from .roofline import RooflineFigure, ceilings_html, roofline_figure
from .snn import (
    MembraneTraceFigure,
    PopulationRateFigure,
    RateHistogramFigure,
    ReceptiveFieldFigure,
    RunHistoryFigure,
    SpikeRasterFigure,
)
from .sparse import FormatLatencyFigure, LayerSparsityFigure, PruneCurveFigure

__all__ = ["CalibrationFigure", "FormatLatencyFigure", "GridFigure", "LayerErrorFigure",
           "LayerSparsityFigure", "MembraneTraceFigure", "PopulationRateFigure", "PruneCurveFigure",
           "RateHistogramFigure", "ReceptiveFieldFigure", "RooflineFigure", "RunHistoryFigure",
           "SpikeRasterFigure", "ceilings_html", "roofline_figure"]
