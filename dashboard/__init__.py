"""LesionGAN dashboard: `streamlit run dashboard/app.py`; compute in dashboard.lib."""
