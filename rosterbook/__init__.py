"""rosterbook: Excel as the control panel for the users of an HR or learning platform."""

__version__ = "0.1.0"
