"""The Streamlit app's support code: model loading, intake, views, plots and the live stream. ``pages/`` only lays it out."""
